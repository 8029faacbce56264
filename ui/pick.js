// pick.js - a photo from a file input, a drop on its zone, a paste (app.js routes it here) or the
// camera (an input with capture=, which phones open as the camera).

export function picker(zone, inputs, onFile) {
  for (const input of inputs) {
    input.addEventListener('change', () => {
      if (input.files && input.files[0]) onFile(input.files[0]);
    });
  }
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) onFile(f);
  });
  return { paste: onFile };
}

// The first file of a paste event, or null.
export function pastedFile(e) {
  const items = e.clipboardData ? e.clipboardData.files : null;
  return items && items.length ? items[0] : null;
}

// Shows the server's message in a panel's alert box; null hides it.
export function showError(box, err) {
  if (!err) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  box.textContent = typeof err.describe === 'function' ? err.describe() : String(err.message || err);
  box.hidden = false;
}
