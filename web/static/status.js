// The status page refreshes itself: every 5 seconds it reads
// /-/web/status.json (the same data the page was rendered from) and
// updates the elements that name a field (data-k), the progress bar
// (data-v, data-max) and the tables (data-list, data-cols). Text only:
// nothing from the answer becomes markup.
(function () {
  var live = document.querySelector('.live-note');
  if (!window.fetch || !live) return;
  live.hidden = false;
  function at(obj, path) {
    return path.split('.').reduce(function (o, k) { return o == null ? undefined : o[k]; }, obj);
  }
  function update(data) {
    document.querySelectorAll('[data-k]').forEach(function (el) {
      var v = at(data, el.getAttribute('data-k'));
      el.textContent = v == null ? '' : String(v);
    });
    document.querySelectorAll('progress[data-v]').forEach(function (el) {
      var max = Number(at(data, el.getAttribute('data-max'))) || 0;
      var v = Number(at(data, el.getAttribute('data-v'))) || 0;
      el.max = max > 0 ? max : 1;
      el.value = Math.min(v, el.max);
      el.textContent = at(data, 'mirror.progress_text') || '';
    });
    document.querySelectorAll('[data-list]').forEach(function (body) {
      var rows = at(data, body.getAttribute('data-list')) || [];
      var cols = body.getAttribute('data-cols').split(' ');
      while (body.firstChild) body.removeChild(body.firstChild);
      rows.forEach(function (row) {
        var tr = document.createElement('tr');
        cols.forEach(function (c) {
          var td = document.createElement('td');
          td.textContent = row[c] == null ? '' : String(row[c]);
          tr.appendChild(td);
        });
        body.appendChild(tr);
      });
    });
  }
  function poll() {
    fetch('/-/web/status.json', {credentials: 'same-origin', cache: 'no-store'})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) { if (d) update(d); })
      .catch(function () {})
      .then(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 5000);
})();
