// Loopback listening shared by the demo's servers.

/** Listens on 127.0.0.1:port; a taken port becomes an error a person can act on. */
export function listen(server, port, what) {
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(err.code === 'EADDRINUSE'
      ? new Error(`${what}: port ${port} on 127.0.0.1 is already in use (stop what holds it, or set DEMO_PORT_BASE)`)
      : err));
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

export function closeServer(server) {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}
