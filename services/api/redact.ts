/** Query parameters whose value is a credential (`/v1/stream?access_token=<jwt>` for browsers). */
const SECRET_PARAMETERS = new Set(['access_token']);

/**
 * `url` with the value of every credential in its query replaced by `[redacted]`, for logs and
 * problem bodies. The name is compared decoded (`access%5Ftoken` is `access_token` to the parser).
 * Parameters are cut at `;` as well as `&`: the server's parser takes only `&`, so a token after a
 * `;` is no credential to it, but it is still one in the log.
 */
export function redactUrl(url: string): string {
  const start = url.indexOf('?');
  if (start === -1) return url;
  const query = url
    .slice(start + 1)
    .split(/([&;])/)
    .map((part) => {
      const equals = part.indexOf('=');
      const name = equals === -1 ? part : part.slice(0, equals);
      return SECRET_PARAMETERS.has(decodedName(name).toLowerCase()) ? `${name}=[redacted]` : part;
    });
  return `${url.slice(0, start)}?${query.join('')}`;
}

function decodedName(name: string): string {
  try {
    return decodeURIComponent(name.replaceAll('+', ' '));
  } catch {
    return name;
  }
}
