// app.js - the page's entry point: tabs, the API key (Keys tab and the 401 prompt), paste routing.
import { getKey, setBusyNotice, setKey, setKeyPrompt } from './api.js';
import { initDetect } from './detect.js';
import { initFaces } from './faces.js';
import { initGallery } from './gallery.js';
import { pastedFile } from './pick.js';

const $ = (id) => document.getElementById(id);
const status = $('status');
const announce = (text) => { status.textContent = text; };

// ---- tabs (WAI-ARIA tabs: arrow keys, Home and End move between them) ----
const tabs = [...document.querySelectorAll('[role="tab"]')];
function select(tab, focus = false) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute('aria-controls')).hidden = !on;
  }
  if (focus) tab.focus();
}
for (const t of tabs) {
  t.addEventListener('click', () => select(t));
  t.addEventListener('keydown', (e) => {
    const i = tabs.indexOf(t);
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    select(tabs[(to + tabs.length) % tabs.length], true);
  });
}
const current = () => tabs.find((t) => t.getAttribute('aria-selected') === 'true').id;

// ---- the API key ----
function showKeyState() {
  $('keys-state').textContent = getKey() ? 'A key is set for this tab.' : 'No key is set.';
}
$('keys-form').addEventListener('submit', (e) => {
  e.preventDefault();
  setKey($('keys-input').value.trim());
  $('keys-input').value = '';
  showKeyState();
  announce(getKey() ? 'Key saved for this tab.' : 'No key set.');
});
$('keys-forget').addEventListener('click', () => {
  setKey('');
  showKeyState();
  announce('Key forgotten.');
});

// One prompt at a time: calls that get 401 together wait for the same answer.
let pending = null;
function promptForKey(message) {
  if (pending) return pending;
  const dialog = $('key-dialog');
  const input = $('key-dialog-input');
  $('key-dialog-message').textContent = `The server answered: ${message}. Enter an API key; it is kept ` +
    'for this tab only.';
  input.value = '';
  pending = new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      const key = dialog.returnValue === 'ok' ? input.value.trim() : '';
      input.value = '';
      pending = null;
      showKeyState();
      resolve(key || null);
    }, { once: true });
  });
  dialog.returnValue = '';
  dialog.showModal();
  input.focus();
  return pending;
}
setKeyPrompt(promptForKey);
setBusyNotice(announce);

// ---- the tools ----
const detect = initDetect(announce);
const faces = initFaces(announce);
const gallery = initGallery(announce);

document.addEventListener('paste', (e) => {
  const f = pastedFile(e);
  if (!f) return;
  e.preventDefault();
  const to = { 'tab-detect': detect, 'tab-faces': faces, 'tab-gallery': gallery }[current()];
  if (to) to.paste(f);
});

showKeyState();
// The models first, then the gallery probe: with a keys file both answer 401, and the first prompt's key
// serves the second.
detect.loadModels()
  .catch((e) => detect.showError(e))
  .then(() => gallery.probe())
  .catch(() => {})
  .finally(() => { document.body.dataset.ready = 'true'; });
