// The Admin Portal's only script: a "Copy" button copies the text of the element its
// data-copy attribute names, and says so. Everything else works without script.
document.addEventListener('click', async (event) => {
  const button = event.target.closest('button[data-copy]');
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const text = 'value' in source ? source.value : source.textContent.trim();
  const status = document.getElementById(button.dataset.copy + '-status');
  try {
    await navigator.clipboard.writeText(text);
    if (status) status.textContent = 'Copied to the clipboard.';
  } catch {
    if ('select' in source) source.select();
    if (status) status.textContent = 'Copy is not allowed here: press Ctrl+C to copy the selection.';
  }
});
