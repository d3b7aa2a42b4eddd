// The gateway's API: JSON in and out; every error becomes an ApiError with the
// stable code of the body {"error": {"code", "message", "details"}}.

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** Call the gateway. The session travels in its HttpOnly cookie (same origin). */
export async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, "network", String(error && error.message));
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(
      response.status,
      error.code || (response.status >= 500 ? "server_error" : `http_${response.status}`),
      error.message || response.statusText,
      error.details || {},
    );
  }
  return data;
}

/** Call `fetcher` every `interval` ms until `finished(result)` (or time runs out). */
export async function poll(fetcher, finished, { interval = 1000, timeout = 120000 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const result = await fetcher();
    if (finished(result) || Date.now() > deadline) return result;
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
