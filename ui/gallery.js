// gallery.js - the Gallery tab, on the gallery routes (/v1/gallery, /v1/subjects, /v1/identify). A
// server without them answers 404 to GET /v1/gallery: the tab then says so and offers nothing.
import { api } from './api.js';
import { colorFor, drawScene, fmt, loadBitmap, swatch } from './draw.js';
import { picker, showError } from './pick.js';

const $ = (id) => document.getElementById(id);
const UNKNOWN = '#ffffff';
const enc = encodeURIComponent;

// Gallery boxes are DeepStack-style corners, null for an aligned crop or an embedding.
const toBox = (b) => (b ? { x1: b.x_min, y1: b.y_min, x2: b.x_max, y2: b.y_max } : null);

export function initGallery(announce) {
  const errBox = $('gallery-error');
  const rows = $('gallery-rows');
  let cursor = null;

  async function stats() {
    const r = await api('/v1/gallery');
    const g = r.data;
    $('gallery-stats').textContent = `${g.subjects} people, ${g.faces} faces · ${g.backend}` +
      `${g.connected ? '' : ' (database unreachable: answers come from memory)'} · ${g.index.kind} search, ` +
      `${fmt(g.index.memory_bytes / 1048576, 1)} MiB`;
  }

  function row(s) {
    const name = s.name;
    const tr = document.createElement('tr');
    const td = (x) => { const c = document.createElement('td'); c.append(x); return c; };
    const rename = document.createElement('button');
    rename.type = 'button';
    rename.textContent = 'Rename';
    rename.setAttribute('aria-label', `Rename ${name}`);
    rename.addEventListener('click', () => renameSubject(name));
    const del = document.createElement('button');
    del.type = 'button';
    del.textContent = 'Delete';
    del.setAttribute('aria-label', `Delete ${name} and all their faces`);
    del.addEventListener('click', () => deleteSubject(name));
    const actions = document.createElement('td');
    actions.append(rename, del);
    tr.append(td(name), td(String(s.face_count)), actions);
    return tr;
  }

  async function list(more = false) {
    const r = await api('/v1/subjects', { query: { page_size: 100, cursor: more ? cursor : null } });
    if (!more) rows.replaceChildren();
    rows.append(...r.data.subjects.map(row));
    $('gallery-empty').hidden = rows.children.length > 0;
    cursor = r.data.next_cursor;
    $('gallery-more-box').hidden = !cursor;
  }

  async function refresh() {
    try {
      await Promise.all([stats(), list()]);
    } catch (e) {
      showError(errBox, e);
    }
  }

  async function act(what, fn) {
    showError(errBox, null);
    try {
      await fn();
      announce(what);
      await refresh();
    } catch (e) {
      showError(errBox, e);
    }
  }

  function renameSubject(name) {
    const to = window.prompt(`New name for ${name}`, name);
    if (!to || to === name) return;
    act(`Renamed ${name} to ${to}.`,
      () => api(`/v1/subjects/${enc(name)}`, { method: 'PATCH', json: { name: to } }));
  }

  function deleteSubject(name) {
    if (!window.confirm(`Delete ${name} and all their faces? This cannot be undone.`)) return;
    act(`Deleted ${name}.`, () => api(`/v1/subjects/${enc(name)}`, { method: 'DELETE' }));
  }

  async function enroll(e) {
    e.preventDefault();
    const name = $('enroll-name').value.trim();
    const files = [...$('enroll-files').files];
    if (!name || !files.length) return;
    act(`Enrolled ${files.length} photo${files.length === 1 ? '' : 's'} of ${name}.`, async () => {
      try {
        await api('/v1/subjects', { method: 'POST', json: { name } });
      } catch (err) {
        if (err.status !== 409) throw err; // 409: the subject exists; add faces to it
      }
      const form = new FormData();
      for (const f of files) form.append('image', f, f.name || 'photo');
      await api(`/v1/subjects/${enc(name)}/faces`, {
        method: 'POST', form, query: { aligned: $('enroll-aligned').checked || null },
      });
    });
  }

  async function identify(file) {
    showError(errBox, null);
    const form = new FormData();
    form.append('image', file, file.name || 'photo');
    try {
      const query = { aligned: $('identify-aligned').checked || null };
      const [r, bitmap] = await Promise.all([api('/v1/identify', { method: 'POST', form, query }),
        loadBitmap(file)]);
      // An aligned crop has no detected box: the whole crop is the face.
      const whole = bitmap ? { x1: 0, y1: 0, x2: bitmap.width, y2: bitmap.height } : null;
      const faces = r.data.faces;
      // A match is the nearest subject under the threshold; otherwise the face is unknown, and the
      // nearest candidate is only said for information.
      const named = faces.map((f) => {
        const m = f.match;
        const near = f.candidates[0];
        const text = m ? `${m.subject} (distance ${fmt(m.distance)}, confidence ${fmt(m.confidence)})`
          : `unknown${near ? ` (nearest: ${near.subject} at distance ${fmt(near.distance)}, over the ` +
            `threshold ${fmt(r.data.match_threshold)})` : ''}`;
        return { box: toBox(f.box) || whole, who: m ? m.subject : 'unknown', text, color: m ? colorFor(m.subject) : UNKNOWN };
      });
      drawScene($('identify-canvas'), bitmap,
        named.filter((n) => n.box).map((n) => ({ ...n.box, color: n.color, label: n.who })));
      $('identify-list').replaceChildren(...named.map((n) => {
        const li = document.createElement('li');
        li.append(swatch(n.color), n.text);
        return li;
      }));
      $('identify-json').textContent = JSON.stringify(r.data, null, 2);
      announce(`${faces.length} face${faces.length === 1 ? '' : 's'}: ${named.map((n) => n.who).join(', ')}.`);
    } catch (e) {
      $('identify-canvas').hidden = true;
      $('identify-list').replaceChildren();
      showError(errBox, e);
    }
  }

  // Is there a gallery? Resolves true/false; the tab shows which.
  async function probe() {
    const off = $('gallery-off');
    try {
      await api('/v1/gallery');
    } catch (e) {
      $('gallery-on').hidden = true;
      off.hidden = false;
      if (e.status === 404) {
        off.textContent = 'This server has no face gallery (GET /v1/gallery answered 404): enrolling ' +
          'and identifying people are not available here.';
        $('tab-gallery').classList.add('unavailable');
        $('tab-gallery').textContent = 'Gallery (unavailable)';
      } else {
        off.textContent = `The gallery could not be read: ${e.describe ? e.describe() : e}`;
      }
      return false;
    }
    off.hidden = true;
    $('gallery-on').hidden = false;
    await refresh();
    return true;
  }

  $('gallery-enroll').addEventListener('submit', enroll);
  $('gallery-more').addEventListener('click', () => list(true).catch((e) => showError(errBox, e)));
  const p = picker($('identify-drop'), [$('identify-file')], identify);
  return { paste: p.paste, probe };
}
