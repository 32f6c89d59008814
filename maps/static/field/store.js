// What the field pages keep on the phone, in IndexedDB (it holds photos as Blobs, survives a
// reload and a closed tab, and is not capped at localStorage's few MB):
// - "outbox": reports and rectifications not yet confirmed by the server, each under its
//   Idempotency-Key, with its photo, until the server has it;
// - "kept": the last answers the pages read (the catalog, the work list), to show offline.
"use strict";

const Store = (() => {
  const NAME = "sitewatch-field";
  let opened = null;

  function open() {
    if (!opened) {
      opened = new Promise((resolve, reject) => {
        const request = indexedDB.open(NAME, 1);
        request.onupgradeneeded = () => {
          const db = request.result;
          if (!db.objectStoreNames.contains("outbox")) db.createObjectStore("outbox", { keyPath: "key" });
          if (!db.objectStoreNames.contains("kept")) db.createObjectStore("kept");
        };
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    }
    return opened;
  }

  // One request in its own transaction; resolves when the transaction is committed, so a
  // write is on disk before the page says "saved".
  async function run(store, mode, act) {
    const db = await open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(store, mode);
      const request = act(tx.objectStore(store));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }

  // The outbox's items of one kind ("report" or "rectify"), oldest first.
  async function queued(kind) {
    const all = await run("outbox", "readonly", (s) => s.getAll());
    return all.filter((item) => item.kind === kind).sort((a, b) => a.created - b.created);
  }

  const put = (item) => run("outbox", "readwrite", (s) => s.put(item));
  const get = (key) => run("outbox", "readonly", (s) => s.get(key));
  const remove = (key) => run("outbox", "readwrite", (s) => s.delete(key));
  // ``value`` with the time it was kept, for "fetched 20 min ago".
  const keep = (name, value) => run("kept", "readwrite", (s) => s.put({ at: Date.now(), value }, name));
  const kept = (name) => run("kept", "readonly", (s) => s.get(name));
  // Signing out forgets what this person's token read; their unsent work stays queued.
  const forget = () => run("kept", "readwrite", (s) => s.clear());

  return { queued, put, get, remove, keep, kept, forget };
})();
