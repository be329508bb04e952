// File an ASCMI form: every field of the intake (POST /ascmi/forms, ASCMI.md §1), then the plain-language
// summary of the Consent it produced (GET /ascmi/consents/{id}/summary).
import { ApiError, get, post } from "./api.js";
import { clearErrors, showErrors } from "./errors.js";
import { apply, formatDate, localToday, t } from "./i18n.js";
import { fillPartner, partnerControls, partnerList, readPartner } from "./partners.js";

const $ = (id) => document.getElementById(id);

function check(name, value, labelKey, type = "checkbox", path = null) {
  const wrap = document.createElement("div");
  wrap.className = "check";
  const input = document.createElement("input");
  input.type = type;
  input.name = name;
  input.value = value;
  input.id = `${name}-${value}`;
  if (path) input.dataset.path = path;
  const label = document.createElement("label");
  label.htmlFor = input.id;
  label.dataset.i18n = labelKey;
  wrap.append(input, label);
  return wrap;
}

function option(value, key) {
  const o = document.createElement("option");
  o.value = value;
  o.dataset.i18n = key;
  return o;
}

// One row per category: its name, a plain-language explanation and a share / do-not-share choice.
function categoryRows(vocab) {
  const box = $("categories");
  for (const c of vocab.categories) {
    const fs = document.createElement("fieldset");
    fs.className = "category";
    fs.dataset.path = `categories/${c.code}`;
    const legend = document.createElement("legend");
    legend.dataset.i18n = `category.${c.code}`;
    const explain = document.createElement("p");
    explain.className = "hint";
    explain.id = `explain-${c.code}`;
    explain.dataset.i18n = `category.${c.code}.explain`;
    const choices = document.createElement("div");
    choices.className = "choices";
    for (const choice of ["share", "do-not-share"]) {
      const row = check(`cat-${c.code}`, choice, `choice.${choice}`, "radio");
      row.querySelector("input").setAttribute("aria-describedby", explain.id);
      choices.append(row);
    }
    choices.querySelector('input[value="do-not-share"]').checked = true;
    fs.append(legend, explain, choices);
    box.append(fs);
  }
}

export function setupCapture(vocab, ownCollector) {
  const types = $("form-types");
  vocab.formTypes.forEach((code, i) => {
    const row = check("formType", code, `formType.${code}`, "radio");
    if (i === 0) row.querySelector("input").checked = true;
    types.append(row);
  });
  categoryRows(vocab);
  for (const p of vocab.purposes) $("purposes").append(check("purpose", p, `purpose.${p}`, "checkbox"));
  for (const e of vocab.expirationEvents) $("expEvent").append(option(e, `event.${e}`));
  for (const r of vocab.relationships) $("repRelationship").append(option(r, `relationship.${r}`));
  for (const c of vocab.categories.filter((x) => x.minorMayConsent)) {
    $("minor-categories").append(check("minorCategory", c.code, `category.${c.code}`));
  }
  partnerControls($("collector"), vocab, "collector");
  if (ownCollector) fillPartner($("collector"), ownCollector);
  const include = partnerList($("include-list"), $("add-include"), vocab, "recipients/include");
  const exclude = partnerList($("exclude-list"), $("add-exclude"), vocab, "recipients/exclude");
  const intermediaries = partnerList($("intermediary-list"), $("add-intermediary"), vocab, "intermediaries");

  const today = localToday();
  $("signedDate").value = today;
  $("sigDate").value = today;
  $("formId").value = `F-${Date.now().toString(36).toUpperCase()}`;

  for (const r of document.querySelectorAll('input[name="signer"]')) {
    r.addEventListener("change", () => { $("representative").hidden = !$("signer-representative").checked; });
  }
  $("minorSigned").addEventListener("change", () => { $("minor-details").hidden = !$("minorSigned").checked; });
  apply($("capture"));

  const form = $("form-capture");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await submit(form, vocab, include, exclude, intermediaries);
  });
}

function value(id) {
  return $(id).value.trim();
}

function readAttachment() {
  const file = $("attachment").files[0];
  if (!file) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve({ contentType: file.type, data: String(reader.result).split(",", 2)[1] || "",
                                    title: file.name.slice(0, 200) });
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

// The intake JSON, field names as ASCMI.md §1 and the JSON Schema; empty optional fields are left out so the
// server's 422 speaks only of what is really missing.
export async function collect(vocab, include, exclude, intermediaries) {
  const checked = (name) => [...document.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
  const individual = { givenName: value("givenName"), familyName: value("familyName"), birthDate: value("birthDate") };
  const others = value("otherNames").split(",").map((s) => s.trim()).filter(Boolean);
  if (others.length) individual.otherNames = others;
  if (value("mediCalId")) individual.mediCalId = value("mediCalId").toUpperCase();
  const address = {};
  if (value("addrLine")) address.line = [value("addrLine")];
  if (value("addrCity")) address.city = value("addrCity");
  if (value("addrState")) address.state = value("addrState").toUpperCase();
  if (value("addrPostal")) address.postalCode = value("addrPostal");
  if (Object.keys(address).length) individual.address = address;
  for (const k of ["phone", "email", "preferredLanguage"]) if (value(k)) individual[k] = value(k);

  const categories = {};
  for (const c of vocab.categories) categories[c.code] = checked(`cat-${c.code}`)[0] || "do-not-share";
  const recipients = { allCarePartners: $("allCarePartners").checked };
  const inc = include.read();
  const exc = exclude.read();
  if (inc.length) recipients.include = inc;
  if (exc.length) recipients.exclude = exc;
  const via = intermediaries.read();
  const expiration = {};
  if (value("expDate")) expiration.date = value("expDate");
  if (value("expEvent")) expiration.event = value("expEvent");
  const signature = { signer: checked("signer")[0], method: checked("method")[0], date: value("sigDate") };
  if (signature.signer === "representative") {
    signature.representative = { name: value("repName"), relationship: value("repRelationship"),
                                 authority: value("repAuthority") };
  }
  const form = {
    formType: checked("formType")[0], formVersion: value("formVersion"), formId: value("formId"),
    signedDate: value("signedDate"), individual, collector: readPartner($("collector")), recipients,
    purposes: checked("purpose"), categories, expiration, signature,
    acknowledgements: Object.fromEntries(["rightToRevoke", "redisclosureNotice", "noConditioning", "copyReceived"]
      .map((k) => [k, $(`ack-${k}`).checked])),
  };
  if (via.length) form.intermediaries = via;
  if ($("minorSigned").checked) form.minorSignature = { date: value("minorDate"), categories: checked("minorCategory") };
  const attachment = await readAttachment();
  if (attachment) form.attachment = attachment;
  return form;
}

export function consentIdOf(location) {
  const m = /Consent\/([^/]+)/.exec(location || "");
  return m ? m[1] : null;
}

export async function showSummary(consentId, consentEl, summaryEl) {
  const { data } = await get(`/ascmi/consents/${encodeURIComponent(consentId)}/summary`);
  consentEl.textContent = t("summary.consent", { id: data.consent });
  summaryEl.textContent = data.text;
}

async function submit(form, vocab, include, exclude, intermediaries) {
  const status = $("status");
  clearErrors(form);
  $("capture-result").hidden = true;
  const body = await collect(vocab, include, exclude, intermediaries);
  try {
    const r = await post("/ascmi/forms", body);
    const id = consentIdOf(r.location);
    status.textContent = t("capture.filed", { date: formatDate(body.signedDate) });
    $("capture-result").hidden = false;
    await showSummary(id, $("capture-consent"), $("capture-summary"));
    $("capture-result").focus();
  } catch (e) {
    if (e instanceof ApiError && e.issues.length && [400, 403, 404, 409, 422].includes(e.status)) {
      showErrors(form, e.issues);
      status.textContent = t("errors.notFiled");
      form.querySelector(".error-summary").focus();
    } else {
      status.textContent = t("errors.generic", { message: e.message });
    }
  }
}
