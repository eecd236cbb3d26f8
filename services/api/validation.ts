import type { FastifySchemaCompiler } from 'fastify';
import type { FastifySchemaValidationError } from 'fastify/types/schema.js';
import { type core, safeParse, type ZodType } from 'zod';

/**
 * How the HTTP servers check a body, query or path against its zod schema, and say what is wrong
 * in the API's words: one entry per field and problem (`body.quantity`: `must be a whole number`),
 * an unknown key named as the field it is (`querystring.bogus`), never zod's own phrasing.
 */

/**
 * One failing field, as fastify hands it to the error handler (its `validation` list); `keyword` is
 * zod's issue code, so that one field's one problem is said once.
 */
export interface FieldIssue extends FastifySchemaValidationError {
  /** The field's path under the part of the request (`["quantity"]`, `["items", 0, "price"]`). */
  path: Array<string | number>;
  message: string;
}

const FIELD_ISSUES = Symbol('tradecore.fieldIssues');

/** fastify's validator compiler for zod schemas, giving `FieldIssue`s. */
export const validatorCompiler: FastifySchemaCompiler<ZodType> =
  ({ schema, httpPart }) =>
  (data) => {
    const result = safeParse(schema, data, { error: plainMessage });
    if (result.success) return { value: result.data };
    // No body at all (none sent, or an empty one) where the route needs one: say that, not what
    // the nothing it got is not.
    const issues =
      httpPart === 'body' && (data === undefined || data === null)
        ? [fieldIssue([], 'invalid_type', 'is required: this request takes a JSON object')]
        : onePerFieldAndProblem(result.error.issues.flatMap(fieldIssues));
    return { error: Object.assign(issues, { [FIELD_ISSUES]: true }) };
  };

/**
 * One issue per field and problem: zod can report one twice (`1e300` is past `.int()`'s safe range
 * and past `.max()`), which says nothing more. And a field of the wrong type is only that: zod also
 * measures it against checks meant for the right type (`"password": [1]` is "not a string", and
 * then "too short" as an array).
 */
function onePerFieldAndProblem(issues: FieldIssue[]): FieldIssue[] {
  const wrongType = new Set(
    issues.filter((issue) => issue.keyword === 'invalid_type').map((issue) => issue.instancePath),
  );
  const seen = new Set<string>();
  return issues.filter((issue) => {
    if (issue.keyword !== 'invalid_type' && wrongType.has(issue.instancePath)) return false;
    const key = `${issue.instancePath}\u0000${issue.keyword}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The issues a validator compiled above found, when `validation` (fastify's) holds them. */
export function fieldIssuesOf(validation: unknown): FieldIssue[] | undefined {
  return Array.isArray(validation) && FIELD_ISSUES in validation ? (validation as FieldIssue[]) : undefined;
}

/** An unknown key is a field of its own: `{"bogus":1}` fails at `body.bogus`, not at `body`. */
function fieldIssues(issue: core.$ZodIssue): FieldIssue[] {
  if (issue.code === 'unrecognized_keys')
    return issue.keys.map((key) =>
      fieldIssue(
        [...issue.path, key],
        issue.code,
        'is not a field of this request: remove it (bodies and queries take only their own fields)',
      ),
    );
  return [fieldIssue(issue.path, issue.code, issue.message)];
}

function fieldIssue(at: PropertyKey[], keyword: string, message: string): FieldIssue {
  const path = at.map((part) => (typeof part === 'number' ? part : String(part)));
  return { path, keyword, message, instancePath: `/${path.join('/')}`, schemaPath: '#', params: {} };
}

/**
 * The message for an issue whose schema gave none of its own (a schema's message wins over this
 * one): what the field must be, with what was sent when that helps. Undefined leaves zod's.
 */
function plainMessage(issue: core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}, not ${describe(issue.input)}`;
    case 'invalid_value':
      if (issue.input === undefined) return 'is required';
      return issue.values.length === 1
        ? `must be ${JSON.stringify(issue.values[0])}`
        : `must be one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const word = issue.code === 'too_small' ? 'least' : 'most';
      if (issue.origin === 'string')
        return issue.code === 'too_small' && bound === 1
          ? 'must not be empty'
          : `must be at ${word} ${bound} character${bound === 1 ? '' : 's'}`;
      if (issue.origin === 'array' || issue.origin === 'set')
        return `must have at ${word} ${bound} item${bound === 1 ? '' : 's'}`;
      if (issue.inclusive) return `must be at ${word} ${bound}`;
      return `must be ${issue.code === 'too_small' ? 'greater' : 'less'} than ${bound}`;
    }
    default:
      return undefined;
  }
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a JSON object',
  array: 'an array',
};

function describe(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'an array';
  if (typeof input === 'number' && !Number.isInteger(input)) return `the fraction ${input}`;
  if (typeof input === 'object') return 'an object';
  return `${typeof input === 'string' ? 'a string' : `a ${typeof input}`}`;
}
