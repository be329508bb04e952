// Look up a member (CIN, or name + birth date) through FHIR search — the gate decides what this user sees — and
// show the consent on file now, the history of forms and revocations, what each Care Partner may receive per
// category today ($decide), the accounting of disclosures (AuditEvent?patient=), and the revoke and
// expiration-event forms.
import { ApiError, get, post, searchAll } from "./api.js";
import { consentIdOf, showSummary } from "./capture.js";
import { clearErrors, showErrors } from "./errors.js";
import { apply, formatDate, localToday, humanName, t } from "./i18n.js";
import { readPartner } from "./partners.js";

const $ = (id) => document.getElementById(id);
const NETWORK = "Organization/ascmi-care-partner-network";
let vocab = null;
let current = null; // { patient, consents }
const names = new Map(); // Organization/<id> → name, from the Organizations read for the sharing table

function cell(row, text, header = false) {
  const c = document.createElement(header ? "th" : "td");
  if (header) c.scope = "row";
  c.textContent = text;
  row.append(c);
  return c;
}

function button(key, onClick, params = {}) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "secondary small";
  b.textContent = t(key, params);
  b.addEventListener("click", onClick);
  return b;
}

function localRef(reference) {
  const m = /(Organization|Patient|Consent)\/([^/]+)/.exec(reference || "");
  return m ? `${m[1]}/${m[2]}` : null;
}

function formCode(consent) {
  const codes = (consent.category || []).flatMap((c) => c.coding || []).map((c) => c.code);
  return codes.find((c) => ["AB133", "NON-AB133", "REVOCATION", "CONFIDENTIAL-COMMUNICATIONS"].includes(c)) || "?";
}

function signedOf(consent) {
  return (consent.dateTime || "").slice(0, 10);
}

export function setupLookup(v) {
  vocab = v;
  for (const p of vocab.purposes) {
    const o = document.createElement("option");
    o.value = p;
    o.dataset.i18n = `purpose.${p}`;
    $("lk-purpose").append(o);
  }
  for (const e of vocab.expirationEvents) {
    const o = document.createElement("option");
    o.value = e;
    o.dataset.i18n = `event.${e}`;
    $("ex-event").append(o);
  }
  for (const r of vocab.relationships) {
    const o = document.createElement("option");
    o.value = r;
    o.dataset.i18n = `relationship.${r}`;
    $("rv-repRelationship").append(o);
  }
  for (const r of document.querySelectorAll('input[name="rv-signer"]')) {
    r.addEventListener("change", () => { $("rv-representative").hidden = !$("rv-signer-representative").checked; });
  }
  const today = localToday();
  $("rv-effective").value = today;
  $("rv-signed").value = today;
  $("ex-date").value = today;
  apply($("lookup"));
  $("form-lookup").addEventListener("submit", (e) => { e.preventDefault(); find(); });
  $("lk-purpose").addEventListener("change", () => { if (current) showSharing(); });
  $("form-revoke").addEventListener("submit", (e) => { e.preventDefault(); revoke(); });
  $("form-expire").addEventListener("submit", (e) => { e.preventDefault(); expire(); });
}

// Re-render what is on screen in a newly chosen language (dates, names, table headings).
export function relocalize() {
  if (current) showMember(current.patient, false);
}

async function find() {
  const form = $("form-lookup");
  clearErrors(form);
  $("member").hidden = true;
  $("matches").hidden = true;
  const cin = $("lk-cin").value.trim().toUpperCase();
  const params = new URLSearchParams();
  if (cin) {
    params.set("identifier", `${vocab.cinSystem}|${cin}`);
  } else {
    const given = $("lk-given").value.trim();
    const family = $("lk-family").value.trim();
    const birth = $("lk-birth").value;
    const missing = [];
    if (!family) missing.push({ diagnostics: t("lookup.needFamily"), expression: ["$.family"] });
    if (!birth) missing.push({ diagnostics: t("lookup.needBirth"), expression: ["$.birthdate"] });
    if (missing.length) {
      showErrors(form, missing);
      form.querySelector(".error-summary").focus();
      return;
    }
    params.set("family", family);
    if (given) params.set("given", given);
    params.set("birthdate", birth);
  }
  try {
    const entries = await searchAll(`/fhir/Patient?${params}`, 1);
    const patients = entries.map((e) => e.resource);
    if (!patients.length) {
      $("status").textContent = t("lookup.none");
      return;
    }
    if (patients.length === 1) {
      await showMember(patients[0]);
      return;
    }
    const list = $("match-list");
    list.replaceChildren();
    for (const p of patients) {
      const li = document.createElement("li");
      li.append(button("lookup.choose", () => showMember(p),
                       { name: humanName(p.name), date: formatDate(p.birthDate) }));
      list.append(li);
    }
    $("matches").hidden = false;
    $("status").textContent = t("lookup.several", { count: patients.length });
  } catch (e) {
    $("status").textContent = t("errors.generic", { message: e.message });
  }
}

function cinOf(patient) {
  const id = (patient.identifier || []).find((i) => i.system === vocab.cinSystem);
  return id ? id.value : null;
}

async function showMember(patient, focus = true) {
  const consents = (await searchAll(`/fhir/Consent?patient=Patient/${patient.id}&_count=100`, 3))
    .map((e) => e.resource)
    .filter((c) => formCode(c) !== "CONFIDENTIAL-COMMUNICATIONS")
    .sort((a, b) => signedOf(b).localeCompare(signedOf(a)));
  current = { patient, consents };
  $("member-h").textContent = humanName(patient.name);
  const cin = cinOf(patient);
  $("member-facts").textContent = t("member.facts", { date: formatDate(patient.birthDate), cin: cin || "—" });
  showConsents(consents);
  fillConsentChoices(consents);
  $("member").hidden = false;
  $("matches").hidden = true;
  $("status").textContent = t("lookup.found", { name: humanName(patient.name) });
  if (focus) $("member").focus();
  await showSharing(); // first: it learns the Care Partners' names the accounting shows
  await showDisclosures(patient);
}

function showConsents(consents) {
  const body = $("consents").querySelector("tbody");
  body.replaceChildren();
  if (!consents.length) {
    const row = body.insertRow();
    const c = cell(row, t("member.noForms"));
    c.colSpan = 6;
  }
  for (const c of consents) {
    const row = body.insertRow();
    row.dataset.consent = c.id;
    cell(row, t(`formType.${formCode(c)}`), true);
    cell(row, formatDate(signedOf(c)));
    cell(row, t(`status.${c.status}`));
    const period = (c.provision || {}).period || {};
    cell(row, period.end ? t("period.range", { start: formatDate(period.start), end: formatDate(period.end) })
                         : t("period.open", { start: formatDate(period.start) }));
    cell(row, (c.organization || []).map((o) => o.display || o.reference).join(", "));
    const actions = cell(row, "");
    actions.append(button("action.summary", () => summary(c.id)));
  }
}

function fillConsentChoices(consents) {
  for (const id of ["rv-consent", "ex-consent"]) {
    const sel = $(id);
    sel.replaceChildren();
    for (const c of consents.filter((x) => formCode(x) !== "REVOCATION" && x.status === "active")) {
      const o = document.createElement("option");
      o.value = `Consent/${c.id}`;
      o.textContent = t("consent.option", { form: t(`formType.${formCode(c)}`), date: formatDate(signedOf(c)) });
      sel.append(o);
    }
    sel.disabled = !sel.options.length;
  }
}

async function summary(id) {
  const box = $("consent-summary");
  box.hidden = false;
  await showSummary(id, $("consent-summary-id"), $("consent-summary-text"));
  box.focus();
}

// The Care Partners named on this member's Consents (collector, included or excluded recipients) and the user's
// own Organization: each is asked of the decision engine.
async function partners() {
  const refs = new Set();
  const own = JSON.parse(sessionStorage.getItem("ascmi_token") || "{}").user?.organization;
  if (own) refs.add(own);
  for (const c of current.consents) {
    for (const o of c.organization || []) refs.add(localRef(o.reference));
    const walk = (p) => {
      for (const a of p.actor || []) refs.add(localRef(a.reference?.reference));
      for (const n of p.provision || []) walk(n);
    };
    walk(c.provision || {});
  }
  refs.delete(null);
  refs.delete(NETWORK);
  const out = [];
  for (const ref of refs) {
    try {
      const { data } = await get(`/fhir/${ref}`);
      const identifiers = (data.identifier || []).filter((i) => i.system && i.value);
      if (data.name) names.set(ref, data.name);
      if (identifiers.length) out.push({ ref, name: data.name || ref, identifiers });
    } catch {
      // an Organization this user may not read is left out
    }
  }
  return out;
}

function decideBody(identifiers, purpose, labels) {
  return {
    resourceType: "Parameters",
    parameter: [
      ...current.patient.identifier.map((i) => ({ name: "patient", valueIdentifier: { system: i.system, value: i.value } })),
      ...identifiers.map((i) => ({ name: "recipient", valueIdentifier: { system: i.system, value: i.value } })),
      { name: "purpose", valueCoding: { system: "http://terminology.hl7.org/CodeSystem/v3-ActReason", code: purpose } },
      ...labels.map((l) => ({ name: "label", valueCoding: { system: l.system, code: l.code } })),
    ],
  };
}

function param(parameters, name) {
  return (parameters.parameter || []).find((p) => p.name === name);
}

// Categories are decided separately where the engine would merge them (SUD beside 42CFRPart2 means Part 2).
async function decisions(partner, purpose) {
  const first = vocab.categories.filter((c) => c.labels.length);
  const groups = [first.filter((c) => c.code !== "substance-use"), first.filter((c) => c.code === "substance-use")];
  const out = {};
  let onFile = null;
  for (const group of groups.filter((g) => g.length)) {
    const labels = group.map((c) => c.labels[0]);
    const { data } = await post("/fhir/Consent/$decide", decideBody(partner.identifiers, purpose, labels));
    onFile = onFile || { onFile: param(data, "consentOnFile")?.valueBoolean, consent: param(data, "consent") };
    for (const ld of (data.parameter || []).filter((p) => p.name === "label-decision")) {
      const label = ld.part.find((p) => p.name === "label").valueCoding;
      const decision = ld.part.find((p) => p.name === "decision").valueCode;
      const category = group.find((c) => c.labels[0].code === label.code && c.labels[0].system === label.system);
      if (category) out[category.code] = decision;
    }
  }
  return { byCategory: out, onFile };
}

async function showSharing() {
  const purpose = $("lk-purpose").value || "TREAT";
  $("sharing-purpose").textContent = t("member.sharingPurpose", { purpose: t(`purpose.${purpose}`) });
  const table = $("sharing");
  const head = table.querySelector("thead tr");
  const body = table.querySelector("tbody");
  head.replaceChildren();
  body.replaceChildren();
  let list = [];
  try {
    list = await partners();
  } catch (e) {
    $("member-on-file").textContent = t("errors.generic", { message: e.message });
    return;
  }
  const th = document.createElement("th");
  th.scope = "col";
  th.textContent = t("col.category");
  head.append(th);
  const results = [];
  for (const p of list) {
    const col = document.createElement("th");
    col.scope = "col";
    col.textContent = p.name;
    head.append(col);
    try {
      results.push(await decisions(p, purpose));
    } catch (e) {
      results.push({ byCategory: {}, onFile: null, error: e.message });
    }
  }
  const known = results.find((r) => r.onFile);
  if (known && known.onFile.onFile) {
    const ref = known.onFile.consent?.valueReference?.reference || "";
    const id = consentIdOf(ref);
    const c = current.consents.find((x) => x.id === id);
    $("member-on-file").textContent = c
      ? t("member.onFileYes", { form: t(`formType.${formCode(c)}`), date: formatDate(signedOf(c)) })
      : t("member.onFileRef", { ref: localRef(ref) || ref });
  } else {
    $("member-on-file").textContent = known ? t("member.onFileNo") : t("member.onFileUnknown");
  }
  for (const c of vocab.categories.filter((x) => x.labels.length)) {
    const row = body.insertRow();
    cell(row, t(`category.${c.code}`), true);
    for (const r of results) {
      const d = r.byCategory[c.code];
      const td = cell(row, d ? t(`decision.${d}`) : "—");
      if (d) td.className = `decision-${d}`;
    }
  }
}

// The recipient of a BALP disclosure event: its IRCP agent (the Organization), and the person when one signed in.
function describeAgent(event) {
  const agents = event.agent || [];
  const code = (a) => (a.type?.coding || []).map((c) => c.code);
  const recipient = agents.find((a) => code(a).includes("IRCP"))?.who;
  const person = agents.find((a) => !code(a).includes("IRCP") && a.who?.display && a.requestor)?.who?.display;
  const client = agents.find((a) => a.who?.identifier?.value)?.who?.identifier?.value;
  const org = recipient ? names.get(recipient.reference) || recipient.display || recipient.reference : client;
  return [org, person].filter(Boolean).join(" — ") || "—";
}

async function showDisclosures(patient) {
  const body = $("disclosures").querySelector("tbody");
  body.replaceChildren();
  let events = [];
  try {
    events = (await searchAll(`/fhir/AuditEvent?patient=Patient/${patient.id}&_sort=-date&_count=50`, 1))
      .map((e) => e.resource);
  } catch (e) {
    const row = body.insertRow();
    cell(row, e instanceof ApiError && e.status === 403 ? t("member.noAuditScope") : e.message).colSpan = 5;
    return;
  }
  if (!events.length) cell(body.insertRow(), t("member.noDisclosures")).colSpan = 5;
  for (const ev of events) {
    const row = body.insertRow();
    cell(row, formatDate(ev.recorded), true);
    cell(row, describeAgent(ev));
    const purposes = (ev.agent || []).flatMap((a) => a.purposeOfUse || []).flatMap((p) => p.coding || [])
      .map((c) => (vocab.purposes.includes(c.code) ? t(`purpose.${c.code}`) : c.code));
    cell(row, [...new Set(purposes)].join(", ") || "—");
    const cats = (ev.entity || []).flatMap((e) => e.detail || []).filter((d) => /category/.test(d.type || ""))
      .map((d) => d.valueString);
    cell(row, [...new Set(cats)].map((c) => (vocab.categories.some((x) => x.code === c) ? t(`category.${c}`) : c))
      .join(", ") || (ev.type?.display || ev.type?.code || "—"));
    cell(row, ev.outcome === "0" ? t("outcome.success") : t("outcome.refused"));
  }
}

function individualOf(patient) {
  const name = (patient.name || [])[0] || {};
  const out = { givenName: (name.given || []).join(" "), familyName: name.family || "", birthDate: patient.birthDate };
  const cin = cinOf(patient);
  if (cin) out.mediCalId = cin;
  return out;
}

function readFile(input) {
  const file = input.files[0];
  if (!file) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve({ contentType: file.type, data: String(reader.result).split(",", 2)[1] || "" });
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function submitted(form, action, okKey) {
  clearErrors(form);
  try {
    await action();
    await showMember(current.patient, false);
    $("status").textContent = t(okKey);
  } catch (e) {
    if (e instanceof ApiError && e.issues.length) {
      showErrors(form, e.issues);
      form.querySelector(".error-summary").focus();
    } else {
      $("status").textContent = t("errors.generic", { message: e.message });
    }
  }
}

async function revoke() {
  const form = $("form-revoke");
  await submitted(form, async () => {
    const checked = (n) => document.querySelector(`input[name="${n}"]:checked`).value;
    const signature = { signer: checked("rv-signer"), method: checked("rv-method"), date: $("rv-signed").value };
    if (signature.signer === "representative") {
      signature.representative = { name: $("rv-repName").value.trim(), relationship: $("rv-repRelationship").value,
                                   authority: $("rv-repAuthority").value.trim() };
    }
    const body = { revokes: { consent: $("rv-consent").value }, individual: individualOf(current.patient),
                   effectiveDate: $("rv-effective").value, signedDate: $("rv-signed").value, signature,
                   receivedBy: readPartner($("collector")) };
    if ($("rv-id").value.trim()) body.revocationId = $("rv-id").value.trim();
    const attachment = await readFile($("rv-attachment"));
    if (attachment) body.attachment = attachment;
    await post("/ascmi/revocations", body);
  }, "revoke.done");
}

async function expire() {
  const form = $("form-expire");
  await submitted(form, () => post("/ascmi/expiration-events",
    { consent: $("ex-consent").value, event: $("ex-event").value, date: $("ex-date").value }), "expire.done");
}
