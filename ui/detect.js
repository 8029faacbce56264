// detect.js - the Detect tab. The server is asked once at a low confidence (ASK_CONF); the slider then
// filters that answer in the page. Changing the model or the IoU asks again, since NMS runs on the server.
import { api } from './api.js';
import { colorFor, drawScene, fmt, loadBitmap, swatch, timingText } from './draw.js';
import { picker, showError } from './pick.js';

const ASK_CONF = 0.05; // the slider's minimum: nothing the slider can show is missing from the answer
const $ = (id) => document.getElementById(id);

export function initDetect(announce) {
  const el = {
    model: $('detect-model'), conf: $('detect-conf'), confOut: $('detect-conf-out'), iou: $('detect-iou'),
    error: $('detect-error'), canvas: $('detect-canvas'), summary: $('detect-summary'),
    list: $('detect-list'), timing: $('detect-timing'), json: $('detect-json'),
  };
  const state = { file: null, bitmap: null, answer: null, asking: 0 };

  function render() {
    const conf = Number(el.conf.value);
    el.confOut.value = fmt(conf);
    if (!state.answer) return;
    const kept = state.answer.detections.filter((d) => d.confidence >= conf);
    // The most confident last, so its box and label are on top where boxes overlap.
    const order = [...kept].sort((a, b) => a.confidence - b.confidence);
    drawScene(el.canvas, state.bitmap, order.map((d) => ({
      ...d.box, color: colorFor(d.label), label: `${d.label} ${fmt(d.confidence)}`,
    })));
    el.list.replaceChildren(...kept.map((d) => {
      const li = document.createElement('li');
      li.dataset.label = d.label;
      li.dataset.color = colorFor(d.label);
      li.append(swatch(colorFor(d.label)),
        `${d.label} ${fmt(d.confidence)} at (${fmt(d.box.x1, 0)}, ${fmt(d.box.y1, 0)})–(${fmt(d.box.x2, 0)}, ${fmt(d.box.y2, 0)})`);
      return li;
    }));
    const n = kept.length;
    el.summary.textContent = `${n} object${n === 1 ? '' : 's'} with confidence ≥ ${fmt(conf)}` +
      ` (model ${state.answer.model.name})`;
  }

  async function ask() {
    if (!state.file) return;
    const ticket = ++state.asking;
    const form = new FormData();
    form.append('image', state.file, state.file.name || 'photo');
    const query = { conf: ASK_CONF, iou: el.iou.value, model: el.model.value, max_det: 1000 };
    showError(el.error, null);
    announce('Detecting…');
    try {
      const [r, bitmap] = await Promise.all([api('/v1/detect', { method: 'POST', query, form }),
        state.bitmap ? state.bitmap : loadBitmap(state.file)]);
      if (ticket !== state.asking) return; // a newer request replaced this one
      state.bitmap = bitmap;
      state.answer = r.data;
      el.json.textContent = JSON.stringify(r.data, null, 2);
      el.timing.textContent = timingText(r.data.timing_ms, r.ms);
      render();
      announce(el.summary.textContent);
    } catch (err) {
      if (ticket !== state.asking) return;
      state.answer = null;
      el.canvas.hidden = true;
      el.list.replaceChildren();
      el.summary.textContent = '';
      el.timing.textContent = '';
      el.json.textContent = err.describe ? err.describe() : String(err);
      showError(el.error, err);
      announce('Detection failed.');
    }
  }

  function setFile(file) {
    state.file = file;
    state.bitmap = null;
    ask();
  }

  async function loadModels() {
    const r = await api('/v1/models');
    const yolo = (r.data.models || []).filter((m) => m.kind === 'yolo');
    el.model.replaceChildren(...yolo.map((m) => {
      const o = document.createElement('option');
      o.value = m.name;
      o.textContent = `${m.name} (${m.input.width}×${m.input.height})${m.default ? ', default' : ''}`;
      o.selected = !!m.default;
      return o;
    }));
  }

  el.conf.addEventListener('input', render);
  el.iou.addEventListener('change', ask);
  el.model.addEventListener('change', ask);
  const p = picker($('detect-drop'), [$('detect-file'), $('detect-camera')], setFile);
  return { paste: p.paste, loadModels, showError: (err) => showError(el.error, err) };
}
