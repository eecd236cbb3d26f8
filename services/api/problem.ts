import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { isDomainError } from '../../domain/shared/domain-error.ts';
import { WrongExpectedVersion } from '../../domain/shared/event-store.ts';
import { redactUrl } from './redact.ts';

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

/** A refusal decided in the API layer (auth, ownership, idempotency), with its status and stable reason. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly extensions: Record<string, unknown> = {},
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
  FST_ERR_BAD_URL: 'the path is not valid percent-encoding (a % needs two hex digits after it)',
  FST_ERR_MAX_PARAM_LENGTH: 'a path parameter is over 300 characters',
};

/** Turns anything thrown by a route (or by fastify itself) into a problem. */
export function toProblem(error: unknown): Problem {
  if (error instanceof ApiProblem)
    return problem(error.status, error.reason, error.message, error.extensions);
  if (isDomainError(error))
    return problem(statusOfReason(error.reason), error.reason, error.message, { details: error.details });
  if (error instanceof WrongExpectedVersion)
    return problem(409, 'CONCURRENCY_CONFLICT', 'the resource changed concurrently; retry the request');
  if (error instanceof Error && error.name === 'InvalidCursor')
    return problem(400, 'INVALID_CURSOR', 'the cursor is not one this list gave out', {
      errors: [{ field: 'querystring.cursor', message: 'invalid cursor' }],
    });
  const fastifyError = error as FastifyError & { validation?: unknown[]; validationContext?: string };
  if (hasZodFastifySchemaValidationErrors(fastifyError)) {
    const where = fastifyError.validationContext ?? 'body';
    return problem(400, 'VALIDATION_FAILED', 'the request does not match its schema', {
      // The provider keeps the zod issue's path in instancePath ("/amount", "/items/0/price").
      errors: fastifyError.validation.map((issue) => ({
        field: [where, ...issue.instancePath.split('/').filter((part) => part !== '')].join('.'),
        message: issue.message ?? 'invalid',
      })),
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
    return problem(status, reason, FASTIFY_DETAILS[fastifyError.code ?? ''] ?? fastifyError.message);
  }
  return problem(
    500,
    'INTERNAL_ERROR',
    'the request failed on our side; it is logged under its correlation id',
  );
}
