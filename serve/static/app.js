// The demo page of the companion avatar API: plain ES module, no framework, no CDN.
//
// Flow: the API key (kept in sessionStorage) -> GET /v1/companions -> "Speak" opens one session
// per companion (POST /v1/sessions) and POSTs the text to /v1/sessions/{id}/generate; the MP4
// plays in the <video>. Errors are the API's problem+json bodies, shown as they come. When
// GET /v1/realtime says LiveKit is configured and the bundled livekit-client loads
// (vendor/, built by `make serve`), "Talk in real time" joins the session's room.

const KEY_STORAGE = "companion-avatar.api-key";
// H.264 High + AAC-LC: what the generate endpoint encodes (for MediaSource streaming)
const STREAM_MIME = 'video/mp4; codecs="avc1.64001f, mp4a.40.2"';

const $ = (id) => document.getElementById(id);
const sessions = new Map(); // companion id -> session id (one session per companion)
let videoUrl = null; // the object URL the <video> plays now
let livekit = null; // the livekit-client module, when bundled and real time is on
let room = null; // the LiveKit room of a real-time call

/** An API error: the problem+json body's title and detail, and Retry-After. */
class ApiError extends Error {
  constructor(status, title, detail, retryAfter) {
    super(`${status} ${title}: ${detail}`);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

async function problemOf(res) {
  let title = res.statusText || "Error";
  let detail = "the server gave no details";
  if ((res.headers.get("content-type") || "").includes("json")) {
    try {
      const body = await res.json();
      title = body.title || title;
      detail = body.detail || detail;
    } catch {
      // not the JSON it claimed: keep the status line
    }
  }
  return new ApiError(res.status, title, detail, res.headers.get("retry-after"));
}

/** fetch() with the key; throws ApiError for every status >= 400. */
async function api(path, { method = "GET", json, form } = {}) {
  const headers = { Authorization: `Bearer ${$("key").value.trim()}` };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  const res = await fetch(path, { method, headers, body });
  if (!res.ok) throw await problemOf(res);
  return res;
}

function showProblem(err) {
  const box = $("problem");
  if (!err) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  let text = err instanceof ApiError ? err.message : `Error: ${err.message || err}`;
  if (err.retryAfter) text += ` (retry in ${err.retryAfter} s)`;
  box.textContent = text;
  box.hidden = false;
  setStatus("");
}

function setStatus(text) {
  $("status").textContent = text;
}

function setBusy(busy) {
  for (const id of ["speak", "upload", "use-key"]) $(id).disabled = busy;
  document.body.classList.toggle("busy", busy);
}

// -- key and companions -------------------------------------------------------------------

async function useKey(event) {
  event?.preventDefault();
  const key = $("key").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_STORAGE, key);
  sessions.clear();
  showProblem(null);
  try {
    await loadCompanions();
    $("speak").disabled = false;
    $("upload").disabled = false;
    setStatus("Ready: type something and press Speak.");
    await checkRealtime();
  } catch (err) {
    $("speak").disabled = true;
    $("upload").disabled = true;
    showProblem(err);
  }
}

async function loadCompanions(select) {
  const list = await (await api("/v1/companions")).json();
  const menu = $("companion");
  const keep = select || menu.value;
  menu.replaceChildren(
    ...list.map((c) => new Option(`${c.name} (${c.id})`, c.id, false, c.id === keep)),
  );
  menu.disabled = false;
}

async function upload(event) {
  event.preventDefault();
  const form = new FormData();
  form.append("name", $("upload-name").value.trim());
  for (const file of $("upload-files").files) form.append("images", file, file.name);
  showProblem(null);
  setBusy(true);
  setStatus("Uploading and deriving the avatar...");
  try {
    const made = await (await api("/v1/companions", { method: "POST", form })).json();
    await loadCompanions(made.id);
    $("upload-form").reset();
    setStatus(`Added ${made.name}: the avatar uses image ${made.source_image + 1}.`);
  } catch (err) {
    showProblem(err);
  } finally {
    setBusy(false);
  }
}

// -- sessions and generate ----------------------------------------------------------------

async function sessionFor(companionId) {
  if (!sessions.has(companionId)) {
    const res = await api("/v1/sessions", { method: "POST", json: { companion_id: companionId } });
    sessions.set(companionId, (await res.json()).id);
  }
  return sessions.get(companionId);
}

async function generate(companionId, body, stream) {
  for (let attempt = 0; ; attempt++) {
    const sid = await sessionFor(companionId);
    const query = stream ? "?stream=true" : "";
    try {
      return await api(`/v1/sessions/${sid}/generate${query}`, { method: "POST", json: body });
    } catch (err) {
      // the session expired (idle TTL) or was deleted: open a new one, once
      if (!(err instanceof ApiError && err.status === 404) || attempt > 0) throw err;
      sessions.delete(companionId);
    }
  }
}

function playUrl(url) {
  const video = $("video");
  if (videoUrl) URL.revokeObjectURL(videoUrl);
  videoUrl = url;
  video.src = url;
  video.play().catch(() => setStatus("Press play to watch (the browser blocked autoplay)."));
}

/** Append the streamed (fragmented) MP4 to a MediaSource as it arrives; returns the bytes. */
async function playStream(res) {
  const source = new MediaSource();
  playUrl(URL.createObjectURL(source));
  await new Promise((ok) => source.addEventListener("sourceopen", ok, { once: true }));
  const buffer = source.addSourceBuffer(STREAM_MIME);
  const chunks = [];
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    buffer.appendBuffer(value);
    await new Promise((ok, fail) => {
      const settled = new AbortController();
      const opts = { signal: settled.signal };
      const finish = (outcome) => {
        settled.abort();
        outcome();
      };
      buffer.addEventListener("updateend", () => finish(ok), opts);
      buffer.addEventListener("error", () => finish(() => fail(new Error("not fMP4"))), opts);
    });
  }
  if (source.readyState === "open") source.endOfStream();
  return chunks;
}

async function speak(event) {
  event.preventDefault();
  const text = $("text").value;
  if (!text.trim()) {
    showProblem(new Error("type what the companion should say"));
    return;
  }
  const body = { text };
  if ($("emotion").value) body.emotion = $("emotion").value;
  const stream = $("stream").checked;
  showProblem(null);
  setBusy(true);
  setStatus("Rendering...");
  const started = performance.now();
  try {
    const res = await generate($("companion").value, body, stream);
    let how = "file";
    if (stream) {
      try {
        await playStream(res.clone());
        how = "stream";
      } catch {
        // a whole (unfragmented) MP4, e.g. from the cache: play it the plain way
        playUrl(URL.createObjectURL(await res.blob()));
      }
    } else {
      playUrl(URL.createObjectURL(await res.blob()));
    }
    $("video").dataset.played = how; // "stream" (MediaSource) or "file"
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    setStatus(`Rendered in ${seconds} s.`);
  } catch (err) {
    showProblem(err);
  } finally {
    setBusy(false);
  }
}

// -- real time (LiveKit) ------------------------------------------------------------------

async function checkRealtime() {
  const info = await (await api("/v1/realtime")).json();
  if (info.enabled && !livekit) {
    try {
      livekit = await import("./vendor/livekit-client.esm.js");
    } catch {
      console.warn("livekit-client is not bundled (run make serve): real time is off");
    }
  }
  $("talk").hidden = !(info.enabled && livekit);
}

function endCall() {
  room = null;
  $("talk").textContent = "Talk in real time";
  $("remote").replaceChildren();
  $("remote").hidden = true;
  $("video").hidden = false;
}

async function talk() {
  if (room) {
    await room.disconnect(); // the Disconnected event ends the call
    return;
  }
  showProblem(null);
  setStatus("Joining the companion's room...");
  try {
    const sid = await sessionFor($("companion").value);
    const grant = await (await api(`/v1/sessions/${sid}/token`, { method: "POST", json: {} })).json();
    const { Room, RoomEvent } = livekit;
    const call = new Room({ adaptiveStream: true, dynacast: true });
    call.on(RoomEvent.TrackSubscribed, (track) => {
      const element = track.attach();
      $("remote").appendChild(element);
      $("remote").hidden = false;
      $("video").hidden = true;
    });
    call.on(RoomEvent.TrackUnsubscribed, (track) => track.detach().forEach((e) => e.remove()));
    call.on(RoomEvent.Disconnected, () => {
      endCall();
      setStatus("Call ended.");
    });
    await call.connect(grant.url, grant.token);
    await call.localParticipant.setMicrophoneEnabled(true);
    room = call;
    $("talk").textContent = "Hang up";
    setStatus(`In room ${grant.room}: speak to your companion.`);
  } catch (err) {
    showProblem(err);
  }
}

// -- start --------------------------------------------------------------------------------

function start() {
  $("key-form").addEventListener("submit", useKey);
  $("upload-form").addEventListener("submit", upload);
  $("speak-form").addEventListener("submit", speak);
  $("talk").addEventListener("click", talk);
  $("stream-box").hidden = !(window.MediaSource && MediaSource.isTypeSupported(STREAM_MIME));
  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved) {
    $("key").value = saved;
    useKey();
  }
}

start();
