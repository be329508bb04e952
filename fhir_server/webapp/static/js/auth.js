// Sign-in for people: SMART App Launch standalone launch, authorization code + PKCE (S256, WebCrypto).
// The access token lives in sessionStorage (gone when the tab closes); sign-out asks the server to revoke it.

export const CLIENT_ID = "ascmi-care-partner-app";
// What the page calls: intake (Consent.c), look-ups (Patient, Consent, Organization, Provenance, AuditEvent),
// $decide (Consent.r). The server grants the intersection with what the user may have.
export const SCOPES = [
  "user/Patient.rs", "user/Consent.crs", "user/Organization.rs", "user/OrganizationAffiliation.rs",
  "user/Provenance.rs", "user/DocumentReference.rs", "user/RelatedPerson.rs", "user/AuditEvent.rs",
].join(" ");
const TOKEN = "ascmi_token";
const PENDING = "ascmi_pending_login";

function base64url(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(n = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

async function challengeOf(verifier) {
  return base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
}

function fhirBase() {
  return `${location.origin}/fhir`;
}

export function redirectUri() {
  return `${location.origin}/app/`;
}

async function endpoints() {
  const fallback = { authorize: `${fhirBase()}/auth/authorize`, token: `${fhirBase()}/auth/token`,
                     logout: `${fhirBase()}/auth/logout` };
  try {
    const r = await fetch(`${fhirBase()}/.well-known/smart-configuration`);
    if (!r.ok) return fallback;
    const c = await r.json();
    // Sign-out is the server's logout (the token refused at once on every worker, and audited as a logout).
    return { authorize: c.authorization_endpoint || fallback.authorize, token: c.token_endpoint || fallback.token,
             logout: fallback.logout };
  } catch {
    return fallback;
  }
}

// Leave for the authorization server's login page; it comes back to /app/?code=…&state=….
export async function signIn(lang) {
  // WebCrypto (the PKCE challenge) exists only in a secure context: HTTPS, or localhost while developing.
  if (!window.isSecureContext || !crypto.subtle) throw new SignInError("insecure");
  const verifier = randomString(48);
  const state = randomString(24);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state }));
  const { authorize } = await endpoints();
  const query = new URLSearchParams({
    response_type: "code", client_id: CLIENT_ID, redirect_uri: redirectUri(), scope: SCOPES, state,
    aud: fhirBase(), code_challenge: await challengeOf(verifier), code_challenge_method: "S256", ui_locales: lang,
  });
  location.assign(`${authorize}?${query}`);
}

export class SignInError extends Error {}

// Back from the login page: check state, exchange the code. Returns true when a token was stored.
export async function completeSignIn() {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return false;
  history.replaceState(null, "", redirectUri()); // the code never stays in the address bar or history
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  if (params.has("error")) throw new SignInError(params.get("error_description") || params.get("error"));
  if (!pending || params.get("state") !== pending.state) throw new SignInError("state");
  const { token } = await endpoints();
  const r = await fetch(token, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code: params.get("code"),
                                redirect_uri: redirectUri(), client_id: CLIENT_ID,
                                code_verifier: pending.verifier }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok || !body.access_token) throw new SignInError(body.error_description || body.error || String(r.status));
  const expiresAt = Date.now() + 1000 * Number(body.expires_in || 300);
  sessionStorage.setItem(TOKEN, JSON.stringify({ access_token: body.access_token, expires_at: expiresAt,
                                                 scope: body.scope, user: body.user || {} }));
  return true;
}

// The stored session, or null when absent or expired.
export function session() {
  const s = JSON.parse(sessionStorage.getItem(TOKEN) || "null");
  if (!s || !s.access_token) return null;
  if (s.expires_at && Date.now() > s.expires_at) {
    sessionStorage.removeItem(TOKEN);
    return null;
  }
  return s;
}

export async function signOut() {
  const s = session();
  sessionStorage.removeItem(TOKEN);
  if (!s) return;
  const { logout } = await endpoints();
  try {
    await fetch(logout, { method: "POST", headers: { Authorization: `Bearer ${s.access_token}` } });
  } catch {
    // the token is gone from this tab either way; it also expires on its own
  }
}
