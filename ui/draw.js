// draw.js - the photo on a canvas at its own size (boxes come in pixels of the upright image), with
// boxes, labels and landmark points on top. CSS scales the canvas down to the screen.

// Distinct, saturated colours that stay visible on photos; a label always gets the same one.
export const PALETTE = ['#ff1f5b', '#00cd6c', '#009ade', '#ffc61e', '#af58ba', '#f28522', '#00e5ff',
  '#a0b700', '#ff6ec7', '#7f5cff'];

export function colorFor(label) {
  let h = 0;
  for (const c of String(label)) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

// A photo as an ImageBitmap, EXIF orientation applied like the server's default. Null if the browser
// cannot decode it (the server's answer then says why).
export async function loadBitmap(blob) {
  try {
    return await createImageBitmap(blob, { imageOrientation: 'from-image' });
  } catch {
    return null;
  }
}

// boxes: [{x1, y1, x2, y2, color, label}]; points: [{x, y, color}].
export function drawScene(canvas, bitmap, boxes = [], points = []) {
  if (!bitmap) {
    canvas.hidden = true;
    return;
  }
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  const line = Math.max(2, Math.round(Math.max(bitmap.width, bitmap.height) / 250));
  const font = Math.max(12, line * 6);
  ctx.lineWidth = line;
  ctx.font = `${font}px system-ui, sans-serif`;
  ctx.textBaseline = 'top';
  for (const b of boxes) {
    ctx.strokeStyle = b.color;
    ctx.strokeRect(b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1);
  }
  for (const b of boxes) {
    if (!b.label) continue;
    const w = ctx.measureText(b.label).width + line * 2;
    const h = font + line;
    const x = Math.min(Math.max(0, b.x1 - line / 2), Math.max(0, bitmap.width - w));
    const y = b.y1 - h >= 0 ? b.y1 - h : Math.max(0, b.y1);
    ctx.fillStyle = b.color;
    ctx.fillRect(x, y, w, h);
    ctx.fillStyle = '#000';
    ctx.fillText(b.label, x + line, y + line / 2);
  }
  const r = Math.max(1.5, line * 0.8);
  for (const p of points) {
    ctx.fillStyle = p.color;
    ctx.beginPath();
    ctx.arc(p.x, p.y, r, 0, 2 * Math.PI);
    ctx.fill();
  }
  canvas.hidden = false;
}

// A text swatch for a list item, so the list says which box is which colour.
export function swatch(color) {
  const s = document.createElement('span');
  s.className = 'swatch';
  s.style.backgroundColor = color;
  s.setAttribute('aria-hidden', 'true');
  return s;
}

export function fmt(x, digits = 2) {
  return typeof x === 'number' ? x.toFixed(digits) : String(x);
}

// "decode 6.6 ms · queue 0.0 ms · ... · round trip 181 ms"
export function timingText(timing, roundTripMs) {
  const parts = Object.entries(timing || {}).map(([k, v]) => `${k} ${fmt(v, 1)} ms`);
  parts.push(`round trip ${fmt(roundTripMs, 0)} ms`);
  return 'Timings: ' + parts.join(' · ');
}
