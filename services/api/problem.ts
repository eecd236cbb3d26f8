import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { type DomainError, isDomainError } from '../../domain/shared/domain-error.ts';
import { WrongExpectedVersion } from '../../domain/shared/event-store.ts';
import { formatCents } from '../../domain/shared/money.ts';
import { isTransientError } from '../../projections/transient.ts';
import { redactUrl } from './redact.ts';
import { fieldIssuesOf } from './validation.ts';

/**
 * Every error answer is an RFC 9457 problem (`application/problem+json`): `type`, `title`, `status`,
 * `detail`, `instance`, plus `reason` (a stable code, the domain's own when a rule refused the
 * command), `correlationId`, and `errors` (the failing fields) for validation problems.
 * Stack traces and internal messages never leave the process: a 5xx says only that it failed.
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  reason: string;
  detail?: string;
  instance?: string;
  correlationId?: string;
  errors?: Array<{ field: string; message: string }>;
  [extension: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
const TYPE_BASE = 'https://tradecore.dev/problems/';

/**
 * A refusal decided in the API layer (auth, ownership, idempotency), with its status and stable
 * reason, and the headers that go with it (`retry-after`).
 */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly extensions: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  417: 'Expectation Failed',
  422: 'Unprocessable Content',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** The HTTP status of a domain rejection, by the shape of its reason code. */
export function statusOfReason(reason: string): number {
  if (reason === 'ACCOUNT_NOT_FOUND' || reason === 'ORDER_NOT_FOUND') return 404;
  if (reason.endsWith('_ALREADY_REGISTERED') || reason.endsWith('_ALREADY_LISTED')) return 409;
  if (reason === 'ORDER_ALREADY_PLACED') return 409;
  return 422;
}

export function problem(
  status: number,
  reason: string,
  detail?: string,
  extra: Partial<Problem> = {},
): Problem {
  return {
    type: `${TYPE_BASE}${reason.toLowerCase().replaceAll('_', '-')}`,
    title: TITLES[status] ?? (status >= 500 ? 'Server Error' : 'Client Error'),
    status,
    reason,
    ...(detail === undefined ? {} : { detail }),
    ...extra,
  };
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, body: Problem): FastifyReply {
  return reply
    .code(body.status)
    .type(PROBLEM_CONTENT_TYPE)
    .send({ ...body, instance: redactUrl(request.url), correlationId: request.correlationId });
}

/** The largest request body a tradecore server takes (the API and every service's own port). */
export const BODY_LIMIT_BYTES = 16 * 1024;

/** Fastify's own refusals of a body, under the reasons the API documents. */
const FASTIFY_REASONS: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_CONTENT_LENGTH',
  FST_ERR_BAD_URL: 'INVALID_URL',
  FST_ERR_MAX_PARAM_LENGTH: 'PATH_PARAMETER_TOO_LONG',
};

/** What to say instead of fastify's message, which repeats the whole path. */
const FASTIFY_DETAILS: Record<string, string> = {
  FST_ERR_BAD_URL: 'the path is not valid percent-encoding',
  FST_ERR_MAX_PARAM_LENGTH: 'a path parameter is over 300 characters',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'a body must be JSON, sent with Content-Type: application/json',
  FST_ERR_CTP_BODY_TOO_LARGE: `a request body may be ${BODY_LIMIT_BYTES / 1024} KiB at most`,
};

/**
 * Why the router could not decode a path (FST_ERR_BAD_URL): a `%` without two hex digits after it
 * (`%ZZ`), or bytes that are well encoded but not UTF-8 (`%FF`: a path is UTF-8 text, é is `%C3%A9`).
 */
export function badPathDetail(url: string): string {
  const path = url.split('?')[0] ?? url;
  const lone = /%(?![0-9A-Fa-f]{2})/.exec(path);
  if (lone)
    return `the path is not valid percent-encoding: a % needs two hex digits after it ("${path.slice(lone.index, lone.index + 3)}")`;
  for (const bytes of path.match(/(?:%[0-9A-Fa-f]{2})+/g) ?? []) {
    try {
      decodeURIComponent(bytes);
    } catch {
      return `the path's percent-encoded bytes ${bytes} are not valid UTF-8: a path is UTF-8 text, encoded byte by byte (é is %C3%A9)`;
    }
  }
  return FASTIFY_DETAILS.FST_ERR_BAD_URL!;
}

/**
 * A rejection's figures as the API speaks: its amounts of money (integer cents inside) as decimal
 * strings, like every amount in a request or an answer (`{"requested":"100.01","available":"100.00"}`).
 */
function detailsOf(error: DomainError): Record<string, unknown> {
  const details: Record<string, unknown> = { ...error.details };
  for (const key of error.moneyDetails) {
    const cents = details[key];
    // An amount that is no whole number of cents (what an INVALID_AMOUNT is about) stays as given.
    if (typeof cents === 'number' && Number.isSafeInteger(cents)) details[key] = formatCents(cents);
  }
  return details;
}

/** Turns anything thrown by a route (or by fastify itself) into a problem; `url` is the request's. */
export function toProblem(error: unknown, url?: string): Problem {
  if (error instanceof ApiProblem)
    return problem(error.status, error.reason, error.message, error.extensions);
  if (isDomainError(error))
    return problem(statusOfReason(error.reason), error.reason, error.message, {
      details: detailsOf(error),
    });
  if (error instanceof WrongExpectedVersion)
    return problem(409, 'CONCURRENCY_CONFLICT', 'the resource changed concurrently; retry the request');
  if (error instanceof Error && error.name === 'InvalidCursor')
    return problem(400, 'INVALID_CURSOR', 'the cursor is not one this list gave out', {
      errors: [{ field: 'querystring.cursor', message: 'invalid cursor' }],
    });
  const fastifyError = error as FastifyError & { validation?: unknown[]; validationContext?: string };
  const issues = fieldIssuesOf(fastifyError.validation);
  if (issues) {
    const where = fastifyError.validationContext ?? 'body';
    return problem(400, 'VALIDATION_FAILED', 'the request does not match its schema', {
      errors: issues.map((issue) => ({ field: [where, ...issue.path].join('.'), message: issue.message })),
    });
  }
  if (Array.isArray(fastifyError.validation))
    return problem(400, 'VALIDATION_FAILED', fastifyError.message, {
      errors: [{ field: fastifyError.validationContext ?? 'body', message: fastifyError.message }],
    });
  const status = typeof fastifyError.statusCode === 'number' ? fastifyError.statusCode : 500;
  if (status >= 400 && status < 500) {
    const reason =
      FASTIFY_REASONS[fastifyError.code ?? ''] ??
      (fastifyError.code ?? 'BAD_REQUEST').replace(/^FST_ERR_/, '');
    const detail =
      fastifyError.code === 'FST_ERR_BAD_URL' && url !== undefined
        ? badPathDetail(url)
        : (FASTIFY_DETAILS[fastifyError.code ?? ''] ?? fastifyError.message);
    return problem(status, reason, detail);
  }
  // The server's trouble, not the request's, and likely to pass (a store unreachable, out of
  // connections, starting, closed to connections, or a deadlock): 503, to retry.
  if (isTransientError(error))
    return problem(
      503,
      'STORE_UNAVAILABLE',
      'a store this request needs is unavailable (unreachable, out of connections, starting, or it aborted the transaction); retry in a few seconds (with the same Idempotency-Key for a create)',
    );
  return problem(
    500,
    'INTERNAL_ERROR',
    'the request failed on our side; it is logged under its correlation id',
  );
}
