function (doc) {
  // key = user name, value = package name, for every users[u] === true
  // (npm stars reads the rows' value); live packuments only.
  if (!doc || typeof doc._id !== 'string' || doc._id.indexOf('_design/') === 0) {
    return;
  }
  if (typeof doc.name !== 'string' || !doc.versions || typeof doc.versions !== 'object') {
    return;
  }
  if (doc.time && typeof doc.time === 'object' && doc.time.unpublished) {
    return;
  }
  var users = doc.users;
  if (!users || typeof users !== 'object' || Object.prototype.toString.call(users) === '[object Array]') {
    return;
  }
  for (var u in users) {
    if (Object.prototype.hasOwnProperty.call(users, u) && users[u] === true) {
      emit(u, doc.name);
    }
  }
}
