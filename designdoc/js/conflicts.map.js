function (doc) {
  // Documents with conflicting revisions (a cluster or a second site wrote
  // them concurrently). couchnpm merges them; this view finds any left open.
  if (doc && doc._conflicts && doc._conflicts.length) {
    emit(doc._id, doc._conflicts.length);
  }
}
