// Progressive enhancement: copy buttons appear only where the clipboard
// API works; the command stays selectable text without JavaScript.
(function () {
  if (!navigator.clipboard) return;
  document.querySelectorAll('button.copy[data-copy]').forEach(function (b) {
    b.hidden = false;
    b.addEventListener('click', function () {
      navigator.clipboard.writeText(b.getAttribute('data-copy')).then(function () {
        b.textContent = 'Copied';
        b.classList.add('done');
        setTimeout(function () { b.textContent = 'Copy'; b.classList.remove('done'); }, 1500);
      }, function () { b.textContent = 'Select and copy'; });
    });
  });
})();
