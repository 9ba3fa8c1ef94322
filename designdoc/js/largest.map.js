function (doc) {
  // Documents of 256 KB and more, by size, for couchnpm doctor's check of
  // max_document_size: key = the size of the JSON body as CouchDB measures
  // it (attachments left out; counted in characters, which is bytes for
  // ASCII), value = null. Read backwards with limit=1 it names the largest;
  // smaller documents are left out to keep the index small.
  if (!doc || typeof doc._id !== 'string' || doc._id.indexOf('_design/') === 0) {
    return;
  }
  var n = JSON.stringify(doc).length;
  if (doc._attachments) {
    n -= JSON.stringify(doc._attachments).length + 16; // and "_attachments":,
  }
  if (n >= 262144) {
    emit(n, null);
  }
}
