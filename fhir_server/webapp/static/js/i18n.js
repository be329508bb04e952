// Message catalogues, the language picker's memory and locale-aware dates and names.
// The chosen language lives in the cookie `ascmi_lang` (path /) so the sign-in page of the authorization server
// speaks the same language; the catalogues are JSON files beside this module (static/i18n/<lang>.json).

export const LANGUAGES = ["en", "es", "zh-Hant", "vi"];
const COOKIE = "ascmi_lang";
let current = "en";
let messages = {};
let fallback = {};

export function language() {
  return current;
}

function fromCookie() {
  const hit = document.cookie.split(";").map((c) => c.trim()).find((c) => c.startsWith(COOKIE + "="));
  return hit ? decodeURIComponent(hit.slice(COOKIE.length + 1)) : null;
}

// The browser's preference mapped onto the four languages (zh-TW, zh-HK and zh-Hant-* → zh-Hant).
function fromBrowser() {
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const lower = tag.toLowerCase();
    if (lower.startsWith("zh")) return "zh-Hant";
    const primary = lower.split("-")[0];
    if (LANGUAGES.includes(primary)) return primary;
  }
  return "en";
}

export function initialLanguage() {
  const remembered = fromCookie();
  return LANGUAGES.includes(remembered) ? remembered : fromBrowser();
}

async function fetchCatalogue(lang) {
  const r = await fetch(`/app/i18n/${lang}.json`, { credentials: "same-origin" });
  if (!r.ok) throw new Error(`catalogue ${lang}: ${r.status}`);
  return r.json();
}

export async function setLanguage(lang) {
  if (!LANGUAGES.includes(lang)) lang = "en";
  if (!Object.keys(fallback).length) fallback = await fetchCatalogue("en");
  messages = lang === "en" ? fallback : await fetchCatalogue(lang);
  current = lang;
  document.cookie = `${COOKIE}=${encodeURIComponent(lang)}; path=/; max-age=31536000; samesite=lax`;
  document.documentElement.lang = lang;
  apply(document);
}

// t("key", {name: "x"}) → the message with {name} replaced.
export function t(key, params = {}) {
  const text = messages[key] ?? fallback[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

export function has(key) {
  return key in messages || key in fallback;
}

// Every element with data-i18n gets its text (with the JSON parameters of data-i18n-params, if any);
// data-i18n-attr="placeholder:key,aria-label:key" sets attributes.
export function apply(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n, el.dataset.i18nParams ? JSON.parse(el.dataset.i18nParams) : {});
  }
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(",")) {
      const [attr, key] = pair.split(":");
      el.setAttribute(attr.trim(), t(key.trim()));
    }
  }
}

// A FHIR date or dateTime shown in the chosen locale. Date-only values are calendar dates: formatted in UTC so a
// time zone never moves them to the day before.
export function formatDate(value) {
  if (!value) return "";
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const d = new Date(dateOnly ? `${value}T00:00:00Z` : value);
  if (Number.isNaN(d.getTime())) return value;
  const options = dateOnly ? { dateStyle: "long", timeZone: "UTC" } : { dateStyle: "long", timeStyle: "short" };
  return new Intl.DateTimeFormat(current, options).format(d);
}

const HAN = /[\u3400-\u9fff\uf900-\ufaff]/;

// Names as the person gives them, in the order the language writes them: family name first in Chinese and
// Vietnamese (Chinese characters run together without a space), given name first in English and Spanish.
export function formatName(given, family, lang = current) {
  given = (given || "").trim();
  family = (family || "").trim();
  if (!given || !family) return given || family;
  if (lang === "zh-Hant") return HAN.test(family + given) ? family + given : `${family} ${given}`;
  if (lang === "vi") return `${family} ${given}`;
  return `${given} ${family}`;
}

// A FHIR HumanName (the first one) rendered with formatName.
export function humanName(names) {
  const n = (names || [])[0];
  if (!n) return "";
  if (!n.family && !n.given && n.text) return n.text;
  return formatName((n.given || []).join(" "), n.family);
}

// Today's calendar date where the staff member is (YYYY-MM-DD), not UTC's: a form signed this evening in
// California is signed today, not tomorrow.
export function localToday() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}
