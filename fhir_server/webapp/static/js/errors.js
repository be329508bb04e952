// A 422's OperationOutcome names each bad field with a JSONPath from the request root ($.individual.birthDate,
// $.categories['mental-health'], $.recipients.include[0].name). Every control carries data-path with the same
// path as segments joined by "/" (individual/birthDate); an issue is shown next to the deepest control or group
// its path reaches, tied to it with aria-describedby, and announced through the form's live region.
import { t } from "./i18n.js";

// "$.a['b-c'][0].d" → ["a", "b-c", "0", "d"]
export function parsePath(path) {
  const out = [];
  const re = /\.([A-Za-z_][A-Za-z0-9_]*)|\['((?:[^'\\]|\\.)*)'\]|\[(\d+)\]/g;
  if (!path || path[0] !== "$") return out;
  let m;
  while ((m = re.exec(path)) !== null) out.push(m[1] ?? (m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3]));
  return out;
}

function issuePath(issue) {
  for (const p of [...(issue.expression || []), ...(issue.location || [])]) if (p.startsWith("$")) return p;
  return null;
}

function target(form, segments) {
  for (let n = segments.length; n > 0; n -= 1) {
    const key = segments.slice(0, n).join("/");
    const el = form.querySelector(`[data-path="${CSS.escape(key)}"]`);
    if (el) return el;
  }
  return null;
}

export function clearErrors(form) {
  for (const el of form.querySelectorAll(".field-error")) el.remove();
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of form.querySelectorAll("[data-error-for]")) {
    const ids = (el.getAttribute("aria-describedby") || "").split(" ").filter((id) => !id.startsWith("err-"));
    if (ids.length) el.setAttribute("aria-describedby", ids.join(" "));
    else el.removeAttribute("aria-describedby");
    el.removeAttribute("data-error-for");
  }
  const summary = form.querySelector(".error-summary");
  if (summary) {
    summary.replaceChildren();
    summary.hidden = true;
  }
}

function describe(el, id) {
  const ids = (el.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
  ids.push(id);
  el.setAttribute("aria-describedby", ids.join(" "));
  el.setAttribute("data-error-for", "1");
  el.setAttribute("aria-invalid", "true");
}

// Show every issue; returns the number placed next to a field.
export function showErrors(form, issues) {
  clearErrors(form);
  const summary = form.querySelector(".error-summary");
  const list = document.createElement("ul");
  let placed = 0;
  issues.forEach((issue, i) => {
    const id = `err-${form.id}-${i}`;
    const text = issue.diagnostics || issue.code || "";
    const el = target(form, parsePath(issuePath(issue)));
    const item = document.createElement("li");
    if (el) {
      placed += 1;
      const p = document.createElement("p");
      p.id = id;
      p.className = "field-error";
      p.textContent = text;
      const group = el.matches("fieldset") ? el : null;
      if (group) {
        const legend = group.querySelector(":scope > legend");
        (legend || group.firstChild).after(p);
        for (const c of group.querySelectorAll("input, select, textarea")) describe(c, id);
      } else {
        (el.closest(".field") || el).append(p);
        describe(el, id);
      }
      const link = document.createElement("a");
      const focusable = group ? group.querySelector("input, select, textarea") : el;
      if (focusable && !focusable.id) focusable.id = `${id}-field`;
      link.href = `#${focusable ? focusable.id : id}`;
      link.textContent = text;
      link.addEventListener("click", (event) => { // to the field itself, not only scrolled into view
        event.preventDefault();
        (focusable || el).focus();
      });
      item.append(link);
    } else {
      item.textContent = text;
    }
    list.append(item);
  });
  if (summary) {
    const heading = document.createElement("h3");
    heading.textContent = t("errors.heading", { count: issues.length });
    summary.append(heading, list);
    summary.hidden = false;
  }
  return placed;
}
