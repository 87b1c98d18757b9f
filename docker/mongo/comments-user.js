// Run once by the mongo image at its first start (/docker-entrypoint-initdb.d),
// as the root user (MONGO_INITDB_ROOT_USERNAME), which stays with the server.
// The comments service's own user: readWrite on its database only (no other
// database, no user or cluster administration). Its password comes from the
// server's environment, never from this file; unset or empty, the script
// fails and the server does not start.
const password = process.env.COMMENTS_MONGO_PASSWORD;
if (!password) {
  throw new Error("COMMENTS_MONGO_PASSWORD must be set: the password of the comments user");
}
db.getSiblingDB("comments").createUser({
  user: "comments",
  pwd: password,
  roles: [{ role: "readWrite", db: "comments" }],
});
