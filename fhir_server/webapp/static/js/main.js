// Boot: language first (so even the sign-in prompt is in the member's language), then the sign-in state, then
// the form and look-up built from the server's vocabulary (the code lists come from its CodeSystems).
import { completeSignIn, session, signIn, signOut, SignInError } from "./auth.js";
import { setupCapture } from "./capture.js";
import { apply, initialLanguage, language, setLanguage, t } from "./i18n.js";
import { relocalize, setupLookup } from "./lookup.js";
import { ownPartner } from "./partners.js";

const $ = (id) => document.getElementById(id);

// Chinese and Vietnamese write the family name first: the name fields follow, in the DOM (so the keyboard order
// matches what is seen), not only visually.
function orderNameFields() {
  const familyFirst = ["zh-Hant", "vi"].includes(language());
  for (const row of document.querySelectorAll(".names")) {
    const given = row.querySelector('[data-name-part="given"]');
    const family = row.querySelector('[data-name-part="family"]');
    if (familyFirst) row.insertBefore(family, given);
    else row.insertBefore(given, family);
  }
}

async function changeLanguage(lang) {
  await setLanguage(lang);
  $("lang").value = language();
  orderNameFields();
  showWho();
  relocalize();
}

function showWho() {
  const s = session();
  const user = (s && s.user) || {};
  $("who").textContent = s ? t("auth.signedInAs", { name: user.display || user.username || t("auth.user"),
                                                    organization: user.organization || "" }) : "";
}

async function main() {
  await changeLanguage(initialLanguage());
  $("lang").addEventListener("change", () => changeLanguage($("lang").value));
  $("sign-in").addEventListener("click", () => signIn(language()).catch((e) => {
    $("problem").textContent = e.message === "insecure" ? t("auth.needsHttps") : t("auth.failed", { reason: e.message });
  }));
  window.addEventListener("ascmi:session-ended", () => {
    $("problem").textContent = t("auth.expired");
    $("sign-in").hidden = false;
    $("sign-out").hidden = true;
    showWho();
  });
  $("sign-out").addEventListener("click", async () => {
    await signOut();
    location.assign("/app/");
  });
  try {
    await completeSignIn();
  } catch (e) {
    $("problem").textContent = e instanceof SignInError ? t("auth.failed", { reason: e.message }) : e.message;
  }
  const s = session();
  $("sign-in").hidden = Boolean(s);
  $("sign-out").hidden = !s;
  $("signed-out").hidden = Boolean(s);
  showWho();
  if (!s) {
    document.body.dataset.ready = "1";
    return;
  }
  const vocab = await (await fetch("/app/vocabulary.json")).json();
  let own = null;
  try {
    own = await ownPartner(s.user && s.user.organization, vocab);
  } catch (e) {
    $("problem").textContent = t("errors.generic", { message: e.message });
  }
  setupCapture(vocab, own);
  setupLookup(vocab);
  orderNameFields();
  for (const id of ["nav", "capture", "lookup"]) $(id).hidden = false;
  apply(document);
  document.body.dataset.ready = "1";
}

main().catch((e) => {
  $("problem").textContent = e.message;
});
