// The GraphQL client of the page: one POST to /graphql per operation, the session token from
// sessionStorage as `Authorization: Bearer <token>`. Nothing here knows what a query asks.

const TOKEN_KEY = 'agentdesk.token';

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** A top-level GraphQL error (or a transport failure): `code` is `extensions.code`
 *  (UNAUTHENTICATED, FORBIDDEN, UNAVAILABLE, …), `retryAfterSeconds` when the server says. */
export class ApiError extends Error {
  constructor(message, code, retryAfterSeconds) {
    super(message);
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** Called with every UNAUTHENTICATED error, so the page can go back to the sign-in form. */
let onSignedOut = () => {};
export function whenSignedOut(callback) {
  onSignedOut = callback;
}

/** Runs one query or mutation; resolves with `data`, rejects with an ApiError. */
export async function request(query, variables = {}) {
  const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
  const current = token();
  if (current) headers.authorization = `Bearer ${current}`;
  let body;
  try {
    const response = await fetch('/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
    body = await response.json();
  } catch (error) {
    throw new ApiError(`The server could not be reached (${error.message}).`, 'NETWORK');
  }
  if (body.errors?.length) {
    const [first] = body.errors;
    const code = first.extensions?.code;
    if (code === 'UNAUTHENTICATED') onSignedOut();
    throw new ApiError(first.message, code, first.extensions?.retryAfterSeconds);
  }
  return body.data;
}

/** A sentence for an ApiError, with when to try again if the server said. */
export function describe(error) {
  if (error?.retryAfterSeconds) return `${error.message} Try again in ${error.retryAfterSeconds} s.`;
  return error?.message ?? String(error);
}
