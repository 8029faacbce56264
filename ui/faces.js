// faces.js - the Faces & verify tab: every face outlined with its 68 landmarks; two photos compared by
// /v1/verify, the answer as a sentence and the faces it used marked.
import { api } from './api.js';
import { drawScene, fmt, loadBitmap, swatch, timingText } from './draw.js';
import { picker, showError } from './pick.js';

const $ = (id) => document.getElementById(id);
const FACE = '#00cd6c';
const POINT = '#ff1f5b';
const USED = '#ffc61e';

export function initFaces(announce) {
  const err = { faces: $('faces-error'), verify: $('verify-error') };

  async function findFaces(file) {
    showError(err.faces, null);
    announce('Finding faces…');
    const form = new FormData();
    form.append('image', file, file.name || 'photo');
    try {
      const [r, bitmap] = await Promise.all([
        api('/v1/faces', { method: 'POST', query: { landmarks: true }, form }), loadBitmap(file)]);
      const faces = r.data.faces;
      drawScene($('faces-canvas'), bitmap,
        faces.map((f, i) => ({ ...f.box, color: FACE, label: `${i + 1}` })),
        faces.flatMap((f) => (f.landmarks || []).map(([x, y]) => ({ x, y, color: POINT }))));
      $('faces-list').replaceChildren(...faces.map((f, i) => {
        const li = document.createElement('li');
        li.append(swatch(FACE), `Face ${i + 1}: score ${fmt(f.det_score)}, ` +
          `${(f.landmarks || []).length} landmarks, box (${fmt(f.box.x1, 0)}, ${fmt(f.box.y1, 0)})–` +
          `(${fmt(f.box.x2, 0)}, ${fmt(f.box.y2, 0)})`);
        return li;
      }));
      $('faces-timing').textContent = timingText(r.data.timing_ms, r.ms);
      $('faces-json').textContent = JSON.stringify(r.data, null, 2);
      announce(`${faces.length} face${faces.length === 1 ? '' : 's'} found.`);
    } catch (e) {
      $('faces-canvas').hidden = true;
      $('faces-list').replaceChildren();
      $('faces-timing').textContent = '';
      showError(err.faces, e);
      announce('Face detection failed.');
    }
  }

  const side = [{ file: null, bitmap: null }, { file: null, bitmap: null }];
  async function setSide(i, file) {
    side[i].file = file;
    side[i].bitmap = await loadBitmap(file);
    drawScene($(`verify-canvas${i + 1}`), side[i].bitmap);
    $('verify-sentence').textContent = '';
  }

  // The face used on each side, or the whole crop when the photos are aligned crops.
  function markUsed(i, face) {
    const b = side[i].bitmap;
    if (!b) return;
    const box = face ? face.box : { x1: 0, y1: 0, x2: b.width, y2: b.height };
    const label = face ? (face.faces_in_image > 1 ? `used (1 of ${face.faces_in_image})` : 'used') : 'whole crop';
    drawScene($(`verify-canvas${i + 1}`), b, [{ ...box, color: USED, label }]);
  }

  async function verify() {
    showError(err.verify, null);
    const sentence = $('verify-sentence');
    if (!side[0].file || !side[1].file) {
      sentence.textContent = 'Choose two photos first.';
      return;
    }
    const form = new FormData();
    form.append('image1', side[0].file, side[0].file.name || 'photo1');
    form.append('image2', side[1].file, side[1].file.name || 'photo2');
    const query = { aligned: $('verify-aligned').checked, match_threshold: $('verify-threshold').value };
    sentence.textContent = 'Comparing…';
    try {
      const r = await api('/v1/verify', { method: 'POST', query, form });
      const d = r.data;
      sentence.textContent = `${d.verified ? 'Same person' : 'Different people'}: distance ` +
        `${fmt(d.distance)}, threshold ${fmt(d.threshold)}`;
      markUsed(0, d.faces.image1);
      markUsed(1, d.faces.image2);
      $('verify-timing').textContent = timingText(d.timing_ms, r.ms);
      $('verify-json').textContent = JSON.stringify(d, null, 2);
    } catch (e) {
      sentence.textContent = '';
      $('verify-timing').textContent = '';
      showError(err.verify, e);
    }
  }

  const p = picker($('faces-drop'), [$('faces-file')], findFaces);
  picker($('verify-drop1'), [$('verify-file1')], (f) => setSide(0, f));
  picker($('verify-drop2'), [$('verify-file2')], (f) => setSide(1, f));
  $('verify-run').addEventListener('click', verify);
  return { paste: p.paste };
}
