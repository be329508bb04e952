// Care Partners on a form: the collector (the signed-in user's own Organization, read from the server) and the
// named recipients to include or exclude. One row per Care Partner; its controls carry data-path so a 422 about
// $.recipients.include[1].identifiers[0].value lands on the right box.
import { get } from "./api.js";
import { t, apply } from "./i18n.js";

export const IDENTIFIER_SYSTEMS = [
  ["http://hl7.org/fhir/sid/us-npi", "partner.system.npi"],
  ["urn:oid:2.16.840.1.113883.4.4", "partner.system.ein"],
];

let seq = 0;

function field(labelKey, control) {
  const wrap = document.createElement("div");
  wrap.className = "field";
  const label = document.createElement("label");
  seq += 1;
  control.id = control.id || `pf-${seq}`;
  label.htmlFor = control.id;
  label.dataset.i18n = labelKey;
  wrap.append(label, control);
  return wrap;
}

function input(name, type = "text") {
  const el = document.createElement("input");
  el.type = type;
  el.name = name;
  return el;
}

function select(name, options) {
  const el = document.createElement("select");
  el.name = name;
  for (const [value, key] of options) {
    const o = document.createElement("option");
    o.value = value;
    if (key) o.dataset.i18n = key;
    else o.textContent = value;
    el.append(o);
  }
  return el;
}

// One Care Partner's controls inside `container` (a fieldset), paths under `path` (e.g. recipients/include/0).
export function partnerControls(container, vocab, path) {
  const name = input("name");
  const system = select("system", IDENTIFIER_SYSTEMS);
  const value = input("value");
  const type = select("type", vocab.carePartnerTypes.map((c) => [c, `partnerType.${c}`]));
  const covered = input("coveredEntity", "checkbox");
  const state = input("state");
  state.maxLength = 2;
  state.size = 3;
  state.autocomplete = "off";
  const coveredWrap = document.createElement("div");
  coveredWrap.className = "field check";
  seq += 1;
  covered.id = `pf-${seq}`;
  const coveredLabel = document.createElement("label");
  coveredLabel.htmlFor = covered.id;
  coveredLabel.dataset.i18n = "partner.coveredEntity";
  coveredWrap.append(covered, coveredLabel);
  container.append(field("partner.name", name), field("partner.identifierSystem", system),
                   field("partner.identifierValue", value), field("partner.type", type), coveredWrap,
                   field("partner.state", state));
  setPaths(container, path);
}

export function setPaths(container, path) {
  container.dataset.path = path;
  const q = (n) => container.querySelector(`[name="${n}"]`);
  q("name").dataset.path = `${path}/name`;
  q("system").dataset.path = `${path}/identifiers/0/system`;
  q("value").dataset.path = `${path}/identifiers/0/value`;
  q("type").dataset.path = `${path}/type`;
  q("coveredEntity").dataset.path = `${path}/coveredEntity`;
  q("state").dataset.path = `${path}/state`;
}

export function readPartner(container) {
  const q = (n) => container.querySelector(`[name="${n}"]`);
  const out = {
    name: q("name").value.trim(),
    identifiers: [{ system: q("system").value, value: q("value").value.trim() }],
    type: q("type").value,
    coveredEntity: q("coveredEntity").checked,
  };
  const state = q("state").value.trim().toUpperCase();
  if (state) out.state = state;
  return out;
}

export function fillPartner(container, partner) {
  const q = (n) => container.querySelector(`[name="${n}"]`);
  q("name").value = partner.name || "";
  const id = (partner.identifiers || [])[0] || {};
  if (id.system && !IDENTIFIER_SYSTEMS.some(([s]) => s === id.system)) {
    const o = document.createElement("option");
    o.value = o.textContent = id.system;
    q("system").append(o);
  }
  if (id.system) q("system").value = id.system;
  q("value").value = id.value || "";
  if (partner.type) q("type").value = partner.type;
  q("coveredEntity").checked = Boolean(partner.coveredEntity);
  q("state").value = partner.state || "";
}

// A repeatable list of Care Partners (recipients.include / recipients.exclude) with add and remove buttons.
export function partnerList(listEl, addButton, vocab, basePath) {
  const rows = () => [...listEl.querySelectorAll(":scope > fieldset")];
  const renumber = () => rows().forEach((row, i) => {
    setPaths(row, `${basePath}/${i}`);
    const legend = row.querySelector("legend");
    legend.dataset.i18n = "partner.legend";
    legend.dataset.i18nParams = JSON.stringify({ n: i + 1 });
    legend.textContent = t("partner.legend", { n: i + 1 });
  });
  addButton.addEventListener("click", () => {
    const row = document.createElement("fieldset");
    row.className = "partner";
    row.append(document.createElement("legend"));
    partnerControls(row, vocab, `${basePath}/${rows().length}`);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "secondary";
    remove.dataset.i18n = "partner.remove";
    remove.addEventListener("click", () => {
      row.remove();
      renumber();
      addButton.focus();
    });
    row.append(remove);
    listEl.append(row);
    apply(row);
    renumber();
    row.querySelector("input").focus();
  });
  return { read: () => rows().map(readPartner), renumber };
}

// The signed-in user's Organization as an intake CarePartner (name, identifiers, type, covered entity, state).
export async function ownPartner(reference, vocab) {
  if (!reference || !reference.startsWith("Organization/")) return null;
  const { data: org } = await get(`/fhir/${reference}`);
  const type = (org.type || []).flatMap((c) => c.coding || []).find((c) => c.system === vocab.carePartnerTypeSystem);
  const covered = (org.extension || []).find((e) => e.url === vocab.coveredEntityUrl);
  const state = ((org.address || [])[0] || {}).state;
  const out = {
    name: org.name || reference,
    identifiers: (org.identifier || []).filter((i) => i.value).map((i) => ({ system: i.system, value: i.value })),
    type: type ? type.code : "provider",
    coveredEntity: covered ? Boolean(covered.valueBoolean) : false,
  };
  if (state) out.state = state;
  return out;
}
