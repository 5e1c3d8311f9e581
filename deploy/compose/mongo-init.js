// Runs once, when MongoDB initialises an empty data volume (mongosh, as the root user).
// Each service gets a user that can read and write only its own database, so no service can
// read another's store. Passwords come from the container's environment (see env.example).
for (const service of ["registration", "matching", "surveys", "notifications"]) {
  const variable = `${service.toUpperCase()}_MONGODB_PASSWORD`;
  const password = process.env[variable];
  if (!password) {
    throw new Error(`${variable} is not set`);
  }
  db.getSiblingDB(service).createUser({
    user: service,
    pwd: password,
    roles: [{ role: "readWrite", db: service }],
  });
  print(`created user ${service} for database ${service}`);
}
