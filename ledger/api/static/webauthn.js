// The console's WebAuthn ceremonies: register a security key, use it for the second step of signing in, and
// sign each flag act with it (a form marked data-sign-act: the challenge is the SHA-256 of what the act signs;
// data-sign-acts: one button, several requests, one touch for each).
// Loaded from /console/static/webauthn.js (no inline script: the Content-Security-Policy forbids it).
"use strict";
(function () {
  const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const unb64 = (text) => {
    const s = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
    return Uint8Array.from(s, (c) => c.charCodeAt(0)).buffer;
  };
  const csrf = () => (document.querySelector('meta[name="csrf"]') || {}).content || "";
  const post = async (url, body) => {
    const r = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF": csrf() },
      body: JSON.stringify(body || {}),
    });
    const data = await r.json();
    if (!r.ok) throw new Error(data.error || "error");
    return data;
  };
  const say = (text) => { const el = document.getElementById("webauthn-status"); if (el) el.textContent = text; };

  async function register(button) {
    const o = await post(button.dataset.options);
    o.challenge = unb64(o.challenge);
    o.user.id = unb64(o.user.id);
    (o.excludeCredentials || []).forEach((c) => { c.id = unb64(c.id); });
    const c = await navigator.credentials.create({ publicKey: o });
    const done = await post(button.dataset.finish, { credential: {
      id: c.id, rawId: b64(c.rawId), type: c.type,
      response: { clientDataJSON: b64(c.response.clientDataJSON),
                  attestationObject: b64(c.response.attestationObject),
                  transports: c.response.getTransports ? c.response.getTransports() : [] },
      clientExtensionResults: c.getClientExtensionResults(),
    } });
    window.location = done.next;
  }

  async function signIn(button) {
    const o = await post(button.dataset.options);
    o.challenge = unb64(o.challenge);
    (o.allowCredentials || []).forEach((c) => { c.id = unb64(c.id); });
    const a = await navigator.credentials.get({ publicKey: o });
    const done = await post(button.dataset.finish, { credential: {
      id: a.id, rawId: b64(a.rawId), type: a.type,
      response: { clientDataJSON: b64(a.response.clientDataJSON),
                  authenticatorData: b64(a.response.authenticatorData),
                  signature: b64(a.response.signature),
                  userHandle: a.response.userHandle ? b64(a.response.userHandle) : null },
      clientExtensionResults: a.getClientExtensionResults(),
    } });
    window.location = done.next;
  }

  // the options come from the form's own address + "/options" (the same fields, so the same statements)
  async function actOptions(form) {
    const r = await fetch(form.action + "/options", {
      method: "POST", credentials: "same-origin", body: new URLSearchParams(new FormData(form)),
    });
    const data = await r.json();
    if (!r.ok) throw new Error(data.error || "error");
    return data;
  }

  // the key's assertion over one act's challenge, as the console reads it (JSON of base64url fields)
  async function answer(o) {
    o.challenge = unb64(o.challenge);
    (o.allowCredentials || []).forEach((c) => { c.id = unb64(c.id); });
    const a = await navigator.credentials.get({ publicKey: o });
    return JSON.stringify({
      id: a.id, rawId: b64(a.rawId), type: a.type,
      response: { clientDataJSON: b64(a.response.clientDataJSON),
                  authenticatorData: b64(a.response.authenticatorData),
                  signature: b64(a.response.signature) },
    });
  }

  // one act: the assertion goes back in the form's hidden "assertion" field, then the form is sent as usual
  async function signAct(form) {
    const data = await actOptions(form);
    form.elements.assertion.value = await answer(data.publicKey);
    Object.entries(data.fields || {}).forEach(([name, value]) => { form.elements[name].value = value; });
    form.submit();
  }

  // several requests from one button (data-sign-acts): one touch per request, each over that request's own
  // statement, the person it is for named by 宛名番号; all the assertions go in the hidden "assertions" field
  async function signActs(form) {
    const data = await actOptions(form);
    const signed = [];
    for (const [i, act] of data.acts.entries()) {
      say(`${i + 1}件目／${data.acts.length}件（宛名番号 ${act.person}）: セキュリティキーに触れて署名してください…`);
      signed.push({ request_id: act.request_id, assertion: await answer(act.publicKey) });
    }
    form.elements.assertions.value = JSON.stringify(signed);
    form.submit();
  }

  // the buttons come disabled and are enabled here, so a click before this script ran is not silently lost
  const init = () => {
    document.querySelectorAll("button[data-webauthn]").forEach((button) => {
      button.addEventListener("click", () => {
        say("セキュリティキーに触れてください…");
        const run = button.dataset.webauthn === "register" ? register : signIn;
        run(button).catch((e) => say("セキュリティキーを確認できませんでした: " + e.message));
      });
      button.disabled = !window.PublicKeyCredential;
      if (button.disabled) say("このブラウザーはセキュリティキーに対応していません。");
    });
    document.querySelectorAll("form[data-sign-act], form[data-sign-acts]").forEach((form) => {
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        if (!window.PublicKeyCredential) { say("このブラウザーはセキュリティキーに対応していません。"); return; }
        say("セキュリティキーに触れて、この操作に署名してください…");
        const run = form.hasAttribute("data-sign-acts") ? signActs : signAct;
        run(form).catch((e) => say("セキュリティキーで署名できませんでした: " + e.message));
      });
    });
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
