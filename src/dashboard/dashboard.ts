import * as path from 'node:path';

/**
 * The progress dashboard: static files served at `/` (no build step, no framework, nothing fetched
 * from the internet). It signs in with an API token and uses only the public API and SSE streams,
 * so the server enforces every role the page's buttons suggest.
 */
export const DASHBOARD_DIR = path.resolve(__dirname, '..', '..', 'src', 'dashboard', 'public');

/** The page runs only its own scripts and styles and talks only to this server. */
export const DASHBOARD_CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
