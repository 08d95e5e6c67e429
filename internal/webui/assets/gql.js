// The GraphQL client the pages share: queries and mutations over fetch, subscriptions over
// graphql-transport-ws, a machine token by client credentials (dev mode's published secrets
// only), as a member app or a service owner's tool would talk to Tongban.

/** Sends one operation; resolves to {data, errors}. Network failures become an error entry. */
export async function gql(query, variables = {}, token = '') {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  try {
    const res = await fetch('/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
    const body = await res.json().catch(() => ({ errors: [{ message: 'HTTP ' + res.status }] }));
    return { data: body.data || null, errors: body.errors || [] };
  } catch (e) {
    return { data: null, errors: [{ message: String(e) }] };
  }
}

/** The first error's code (extensions.code), or ''. */
export function errorCode(res) {
  return (res.errors && res.errors[0] && res.errors[0].extensions && res.errors[0].extensions.code) || '';
}

/**
 * Subscribes over a websocket (graphql-transport-ws). onNext gets each payload's data; onEnd
 * gets the close code and reason when the server ends it (4403: the session ended). Returns a
 * function that unsubscribes.
 */
export function subscribe({ query, variables = {}, token, onNext, onEnd }) {
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/graphql';
  const ws = new WebSocket(url, 'graphql-transport-ws');
  let closedByUs = false;
  ws.onopen = () => ws.send(JSON.stringify({ type: 'connection_init', payload: { Authorization: 'Bearer ' + token } }));
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === 'connection_ack') {
      ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query, variables } }));
    } else if (msg.type === 'next' && onNext) {
      onNext(msg.payload && msg.payload.data);
    } else if (msg.type === 'ping') {
      ws.send(JSON.stringify({ type: 'pong' }));
    }
  };
  ws.onclose = (ev) => { if (!closedByUs && onEnd) onEnd(ev.code, ev.reason); };
  return () => { closedByUs = true; try { ws.close(1000); } catch (_) { /* already closed */ } };
}

/** A machine client's access token (client credentials), or throws with the server's words. */
export async function machineToken(client, secret) {
  const res = await fetch('/oauth2/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: client, client_secret: secret }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error_description || body.error || 'HTTP ' + res.status);
  return body.access_token;
}

/** A PKCE verifier and its S256 challenge (RFC 7636), from the browser's own crypto. */
export async function pkce() {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const verifier = b64url(bytes);
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return { verifier, challenge: b64url(new Uint8Array(digest)) };
}

function b64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
