// Live updates pushed by the server (GET api/v1/events, Server-Sent Events over the session cookie).
// One EventSource for the page, shared by the views: a view subscribes with its context and is
// dropped once it is no longer on screen. The browser reconnects by itself (the server ends each
// stream after a few minutes, so the session is checked again), resuming from the last event id.
let source = null;
const subscribers = new Set();

function dispatch(name, event) {
  let data = null;
  try { data = JSON.parse(event.data); } catch { return; }
  for (const sub of [...subscribers]) {
    if (sub.ctx.stale()) { subscribers.delete(sub); continue; }
    const handler = sub.handlers[name];
    if (handler) {
      const started = performance.now();
      try { handler(data); } catch (error) { console.warn("live update", name, error); }
      performance.measure("ew-live-" + name, { start: started });  // what the benchmark reads
    }
  }
}

function open() {
  if (source && source.readyState !== EventSource.CLOSED) return;
  source = new EventSource("api/v1/events", { withCredentials: true });
  for (const name of ["devices", "tickets", "reset"]) source.addEventListener(name, (e) => dispatch(name, e));
  // A refused stream (signed out) is closed by the browser; the next subscription opens a new one.
}

// handlers: {devices({items, removed, counts}), tickets({ids}), reset()}; ctx: the view's ({stale()}).
export function subscribe(ctx, handlers) {
  for (const sub of [...subscribers]) if (sub.ctx.stale()) subscribers.delete(sub);
  subscribers.add({ ctx, handlers });
  open();
}

export function close() {
  if (source) source.close();
  source = null;
  subscribers.clear();
}
