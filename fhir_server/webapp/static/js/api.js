// Every call the page makes carries the signed-in user's bearer token, so the server's gate decides what is seen.
import { session } from "./auth.js";

export class ApiError extends Error {
  constructor(status, outcome) {
    const issues = (outcome && outcome.issue) || [];
    super(issues.map((i) => i.diagnostics || i.code).join("; ") || `HTTP ${status}`);
    this.status = status;
    this.issues = issues;
  }
}

export async function call(method, path, body, extraHeaders = {}) {
  const s = session();
  const headers = { Accept: "application/fhir+json, application/json", ...extraHeaders };
  if (s) headers.Authorization = `Bearer ${s.access_token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (r.status === 401) {
    // The session ended (expired, signed out elsewhere, revoked): forget the token and say so.
    sessionStorage.removeItem("ascmi_token");
    window.dispatchEvent(new CustomEvent("ascmi:session-ended"));
  }
  if (!r.ok) throw new ApiError(r.status, data);
  return { status: r.status, data, location: r.headers.get("Location") };
}

export const get = (path) => call("GET", path);
export const post = (path, body, headers) => call("POST", path, body, headers);

// Every entry's resource of a searchset, following `next` links (up to `pages` pages).
export async function searchAll(path, pages = 5) {
  const out = [];
  let next = path;
  for (let i = 0; next && i < pages; i += 1) {
    const { data } = await get(next);
    for (const e of data.entry || []) if (e.resource && (!e.search || e.search.mode !== "outcome")) out.push(e);
    const link = (data.link || []).find((l) => l.relation === "next");
    next = link ? link.url.replace(/^https?:\/\/[^/]+/, "") : null;
  }
  return out;
}
