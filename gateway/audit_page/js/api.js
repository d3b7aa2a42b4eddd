// The read-only audit API (/v1/audit/...). Errors carry the gateway's error body.

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "http_error";
    this.details = error.details || {};
  }
}

/** Query string from an object, leaving out empty values. */
export function query(params = {}) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "") continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

async function request(method, path, params) {
  const response = await fetch(`/v1/audit/${path}${query(params)}`, {
    method,
    headers: { Accept: "application/json" },
  });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export const api = {
  overview: () => request("GET", "overview"),
  history: (params) => request("GET", "history", params),
  settlement: (params) => request("GET", "settlement", params),
  timeline: () => request("GET", "timeline"),
  rules: (params) => request("GET", "rules", params),
  verification: () => request("GET", "verification"),
  recompile: () => request("POST", "verification/recompile"),
  csvUrl: (params) => `/v1/audit/history.csv${query(params)}`,
};
