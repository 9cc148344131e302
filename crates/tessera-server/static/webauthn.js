// Passkeys: the only script of the sign-in pages. A form with data-webauthn="get" or "create"
// runs the WebAuthn ceremony its data attributes describe when submitted, puts the answer
// (base64url) in its hidden fields and posts it. Without this script the forms post nothing,
// which the server refuses like a wrong answer; every other form works without script.
(() => {
  const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const bytes = (s) => {
    const t = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
    return Uint8Array.from(t, (c) => c.charCodeAt(0));
  };
  const ids = (list) => (list ? list.split(',') : []).filter(Boolean)
    .map((id) => ({ type: 'public-key', id: bytes(id) }));
  const set = (form, name, value) => { form.elements[name].value = value; };

  async function get(form, d) {
    const cred = await navigator.credentials.get({ publicKey: {
      challenge: bytes(d.challenge), rpId: d.rpId, userVerification: d.userVerification,
      allowCredentials: ids(d.allow), timeout: 120000,
    } });
    set(form, 'credential_id', b64(cred.rawId));
    set(form, 'client_data_json', b64(cred.response.clientDataJSON));
    set(form, 'authenticator_data', b64(cred.response.authenticatorData));
    set(form, 'signature', b64(cred.response.signature));
    set(form, 'user_handle', cred.response.userHandle ? b64(cred.response.userHandle) : '');
  }

  async function create(form, d) {
    const cred = await navigator.credentials.create({ publicKey: {
      challenge: bytes(d.challenge),
      rp: { id: d.rpId, name: d.rpName },
      user: { id: bytes(d.userHandle), name: d.userName, displayName: d.displayName },
      pubKeyCredParams: d.algorithms.split(',').map((alg) => ({ type: 'public-key', alg: Number(alg) })),
      excludeCredentials: ids(d.exclude),
      authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: d.userVerification },
      attestation: 'none', timeout: 120000,
    } });
    set(form, 'client_data_json', b64(cred.response.clientDataJSON));
    set(form, 'attestation_object', b64(cred.response.attestationObject));
  }

  document.querySelectorAll('form[data-webauthn]').forEach((form) => {
    const status = form.querySelector('[data-webauthn-status]');
    if (!window.PublicKeyCredential) {
      if (status) status.textContent = 'This browser cannot use passkeys.';
      return;
    }
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (status) status.textContent = 'Follow your browser\'s prompt…';
      try {
        await (form.dataset.webauthn === 'create' ? create : get)(form, form.dataset);
        form.submit();
      } catch (e) {
        if (status) status.textContent = 'The passkey was not used. Try again or choose another way.';
      }
    });
  });
})();
