function (doc) {
  // A search index: one row per lowercase term of a live packument.
  // Terms: the full name, name parts (split on @ / - _ .), keywords, up to 30
  // words of the description, "maintainer:<name>", "author:<name>",
  // "scope:<scope>" (scope without the @). The value is a small summary (no readme).
  var hasOwn = Object.prototype.hasOwnProperty;
  var toStr = Object.prototype.toString;
  if (!doc || typeof doc._id !== 'string' || doc._id.indexOf('_design/') === 0) {
    return;
  }
  if (typeof doc.name !== 'string' || doc.name === '' || !doc.versions || typeof doc.versions !== 'object') {
    return;
  }
  if (doc.time && typeof doc.time === 'object' && doc.time.unpublished) {
    return;
  }
  var versions = doc.versions;
  var time = doc.time && typeof doc.time === 'object' ? doc.time : {};
  var tags = doc['dist-tags'] && typeof doc['dist-tags'] === 'object' ? doc['dist-tags'] : {};
  var latest = null;
  if (typeof tags.latest === 'string' && hasOwn.call(versions, tags.latest)) {
    latest = tags.latest;
  } else {
    for (var v in versions) {
      if (!hasOwn.call(versions, v)) {
        continue;
      }
      if (latest === null || String(time[v] || '') >= String(time[latest] || '')) {
        latest = v;
      }
    }
  }
  if (latest === null) {
    return;
  }
  var manifest = versions[latest] && typeof versions[latest] === 'object' ? versions[latest] : {};
  var name = doc.name;
  var lname = name.toLowerCase();

  var terms = [];
  var seenTerm = {};
  function term(t) {
    if (typeof t !== 'string') {
      return;
    }
    t = t.replace(/^\s+|\s+$/g, '').toLowerCase();
    if (t === '' || hasOwn.call(seenTerm, t)) {
      return;
    }
    seenTerm[t] = true;
    terms.push(t);
  }

  // name and its parts
  term(lname);
  var parts = lname.split(/[@\/\-_.]+/);
  for (var p = 0; p < parts.length; p++) {
    term(parts[p]);
  }
  if (lname.charAt(0) === '@' && lname.indexOf('/') > 1) {
    term('scope:' + lname.substring(1, lname.indexOf('/')));
  }

  // keywords: latest manifest and root, deduplicated, original order
  var keywords = [];
  var seenKw = {};
  function addKeywords(list) {
    if (typeof list === 'string') {
      list = list.split(/[\s,]+/);
    }
    if (toStr.call(list) !== '[object Array]') {
      return;
    }
    for (var i = 0; i < list.length; i++) {
      if (typeof list[i] !== 'string') {
        continue;
      }
      var k = list[i].replace(/^\s+|\s+$/g, '').toLowerCase();
      if (k === '' || hasOwn.call(seenKw, k)) {
        continue;
      }
      seenKw[k] = true;
      keywords.push(k);
    }
  }
  addKeywords(manifest.keywords);
  addKeywords(doc.keywords);
  for (var kw = 0; kw < keywords.length; kw++) {
    term(keywords[kw]);
  }

  // description words (at most 30 distinct words of 2+ characters)
  var description = typeof doc.description === 'string' ? doc.description :
    (typeof manifest.description === 'string' ? manifest.description : '');
  var words = description.toLowerCase().split(/[^a-z0-9\u00c0-\uffff]+/);
  var nWords = 0;
  var seenWord = {};
  for (var w = 0; w < words.length && nWords < 30; w++) {
    if (words[w].length < 2 || hasOwn.call(seenWord, words[w])) {
      continue;
    }
    seenWord[words[w]] = true;
    nWords++;
    term(words[w]);
  }

  // maintainers
  var maintainers = [];
  var m = toStr.call(doc.maintainers) === '[object Array]' ? doc.maintainers : [];
  for (var i = 0; i < m.length; i++) {
    if (!m[i] || typeof m[i] !== 'object' || typeof m[i].name !== 'string' || m[i].name === '') {
      continue;
    }
    maintainers.push({name: m[i].name, email: typeof m[i].email === 'string' ? m[i].email : ''});
    term('maintainer:' + m[i].name);
  }

  // author: an object with a name, or "Name <email> (url)"
  var author = doc.author !== undefined && doc.author !== null ? doc.author : manifest.author;
  var authorName = null;
  if (author && typeof author === 'object' && typeof author.name === 'string') {
    authorName = author.name;
  } else if (typeof author === 'string') {
    authorName = author.replace(/[<(].*$/, '');
  }
  if (authorName !== null) {
    authorName = authorName.replace(/^\s+|\s+$/g, '');
    if (authorName !== '') {
      term('author:' + authorName);
    }
  }

  var date = typeof time.modified === 'string' ? time.modified :
    (typeof time[latest] === 'string' ? time[latest] : null);
  var value = {
    name: name,
    version: latest,
    description: description,
    keywords: keywords,
    date: date,
    maintainers: maintainers,
    deprecated: !!manifest.deprecated
  };
  // Restricted packages are hidden from anonymous searches (registry/access.go).
  if (doc.access === 'restricted') {
    value.restricted = true;
  }
  for (var t = 0; t < terms.length; t++) {
    emit(terms[t], value);
  }
}
