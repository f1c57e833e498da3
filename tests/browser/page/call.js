// A minimal web client of the BlackBox voice flow, as a web app would write it
// (PROTOCOL.md sections 1-5 and 7). It opens the socket, sends `initialize`
// (callType webCall), waits for `event connection`, answers the server's
// `sdpInvite` with a complete SDP answer (no trickle ICE), plays the agent's
// audio and collects the transcripts. Everything it sees is published on
// window.bbState for the test to poll; window.bbHangUp() ends the call.
// window.report is the short summary of what a browser sees (connection state,
// inbound RTP from getStats(), the close code, the result), small enough to
// read on every poll whatever the server sent.
//
// A server that misbehaves is recorded, not a page error: `problems` holds the
// frames that are not JSON objects, `serverErrors` the error frames,
// `offerRejected` why the browser refused an offer. A second, different offer
// is answered on the same RTCPeerConnection (a renegotiation, as WebRTC does
// it); the very same offer again is a retransmission and is not answered.
"use strict";

(() => {
  const params = new URLSearchParams(location.hash.slice(1));
  const server = params.get("server");
  const token = params.get("token");
  // A cap on ICE gathering: the protocol has no trickle ICE, the answer carries
  // every candidate, so the answer waits for gathering, but never forever.
  const gatherCapMs = Number(params.get("gatherCapMs") || "3000");
  const maxSamples = 3000; // 150 s of audio measurements at 50 ms

  const t0 = performance.now();
  const since = () => Math.round(performance.now() - t0);

  const newMeter = () => ({ sampleRate: null, samples: [], maxRms: 0 });
  const state = {
    phase: "starting",
    socket: "connecting",
    connection: null, // the `data` of `event connection` (recordId or jobId)
    events: [], // names of `event` frames, in order
    messages: [], // types of every frame received, in order
    offerKey: null, // "invite" (live) or "sdpOffer" (documented)
    offerSdp: null,
    answerSdp: null,
    iceGatheringState: "new",
    iceGatheringCapped: false,
    iceConnectionState: "new",
    connectionState: "new",
    times: {}, // milliseconds since the page started, per milestone
    transcripts: [], // {source, text, t}
    result: null, // conversationResult.result
    close: null, // {code, reason, t}
    stats: null, // from getStats(): codec, packets and bytes both ways
    maxAudioLevel: 0, // the highest inbound-rtp audioLevel getStats() gave
    offers: [], // {key, t, same} for each sdpInvite; same: the first one's SDP again
    answers: 0, // sdpAnswer frames sent
    packetsAtLastAnswer: 0, // inbound RTP packets when the last sdpAnswer went
    offerRejected: null, // the browser's reason for refusing an offer
    connectionAtClose: null, // the peer connection's state when the socket closed
    serverErrors: [], // data.message of each error frame
    problems: [], // frames that are not JSON objects
    longestText: 0, // characters of the longest text frame's content
    remote: newMeter(), // the agent's audio: samples are [t, rms, dominant Hz]
    local: newMeter(), // our (fake) microphone, after the browser's processing
    errors: [],
  };
  window.bbState = state;

  const mark = (name) => {
    if (!(name in state.times)) state.times[name] = since();
  };
  const fail = (what, error) => {
    state.errors.push(`${what}: ${error && error.message ? error.message : String(error)}`);
  };
  const show = () => {
    document.getElementById("state").textContent = `${state.phase} / ${state.connectionState}`;
  };

  // Every frame carries the envelope: type, timestamp (ISO 8601 UTC) and channelId null.
  let socket = null;
  const send = (type, payload) => {
    const frame = { type, timestamp: new Date().toISOString(), channelId: null, ...payload };
    socket.send(JSON.stringify(frame));
  };

  // WebAudio measurements of a stream: RMS and the dominant frequency every 50 ms.
  const contexts = [];
  const timers = [];
  const measure = (stream, meter, first) => {
    const context = new AudioContext();
    contexts.push(context);
    context.resume().catch((error) => fail("AudioContext.resume", error));
    const analyser = context.createAnalyser();
    analyser.fftSize = 4096;
    analyser.smoothingTimeConstant = 0;
    context.createMediaStreamSource(stream).connect(analyser);
    const wave = new Float32Array(analyser.fftSize);
    const spectrum = new Float32Array(analyser.frequencyBinCount);
    const binHz = context.sampleRate / analyser.fftSize;
    meter.sampleRate = context.sampleRate;
    const timer = setInterval(() => {
      analyser.getFloatTimeDomainData(wave);
      let sum = 0;
      for (const value of wave) sum += value * value;
      const rms = Math.sqrt(sum / wave.length);
      analyser.getFloatFrequencyData(spectrum);
      let best = 1;
      for (let i = 2; i < spectrum.length; i++) if (spectrum[i] > spectrum[best]) best = i;
      meter.samples.push([since(), rms, Math.round(best * binHz)]);
      if (meter.samples.length > maxSamples) meter.samples.shift();
      meter.maxRms = Math.max(meter.maxRms, rms);
      if (rms > 0.001 && first) mark(first);
    }, 50);
    timers.push(timer);
  };

  const statsOf = async (pc) => {
    const report = await pc.getStats();
    const out = {
      codec: null,
      packetsReceived: 0,
      bytesReceived: 0,
      packetsSent: 0,
      bytesSent: 0,
      audioLevel: 0,
    };
    report.forEach((entry) => {
      if (entry.type === "inbound-rtp" && entry.kind === "audio") {
        out.packetsReceived += entry.packetsReceived || 0;
        out.bytesReceived += entry.bytesReceived || 0;
        out.audioLevel = Math.max(out.audioLevel, entry.audioLevel || 0);
        const codec = entry.codecId && report.get(entry.codecId);
        if (codec) out.codec = `${codec.mimeType}/${codec.clockRate}`;
      } else if (entry.type === "outbound-rtp" && entry.kind === "audio") {
        out.packetsSent += entry.packetsSent || 0;
        out.bytesSent += entry.bytesSent || 0;
      }
    });
    return out;
  };

  // Resolves when ICE gathering is complete, or after gatherCapMs at the latest.
  const gathered = (pc) =>
    new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      const timer = setTimeout(() => {
        state.iceGatheringCapped = true;
        resolve();
      }, gatherCapMs);
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") {
          clearTimeout(timer);
          resolve();
        }
      });
    });

  let mic = null;
  let pc = null;

  // The answer to an offer on the peer connection, once ICE gathering is over.
  const reply = async (offerSdp) => {
    try {
      await pc.setRemoteDescription({ type: "offer", sdp: offerSdp });
    } catch (error) {
      state.offerRejected = error && error.message ? error.message : String(error);
      return false;
    }
    if (state.answers === 0) for (const track of mic.getAudioTracks()) pc.addTrack(track, mic);
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    state.answerSdp = pc.localDescription.sdp;
    send("sdpAnswer", { data: { sdpAnswer: state.answerSdp } });
    state.answers += 1;
    state.packetsAtLastAnswer = state.stats ? state.stats.packetsReceived : 0;
    mark(state.answers === 1 ? "answerSent" : `answer${state.answers}Sent`);
    return true;
  };

  const answer = async (offerSdp) => {
    state.phase = "answering";
    pc = new RTCPeerConnection({ iceServers: [] });
    pc.addEventListener("connectionstatechange", () => {
      state.connectionState = pc.connectionState;
      mark(`connection-${pc.connectionState}`);
      show();
    });
    pc.addEventListener("iceconnectionstatechange", () => {
      state.iceConnectionState = pc.iceConnectionState;
    });
    pc.addEventListener("icegatheringstatechange", () => {
      state.iceGatheringState = pc.iceGatheringState;
    });
    pc.addEventListener("track", (event) => {
      mark("track");
      const stream = event.streams[0] || new MediaStream([event.track]);
      // Chromium's WebAudio reads silence from a remote stream that no media
      // element plays, and getStats() gives audioLevel 0 for one that a muted
      // element plays: attach it to an <audio> element that is not muted.
      const audio = document.getElementById("remote");
      audio.srcObject = stream;
      audio.play().catch((error) => fail("audio.play", error));
      measure(stream, state.remote, "firstAudio");
    });
    if (!(await reply(offerSdp))) {
      state.phase = "offer rejected";
      return;
    }
    state.phase = "answered";
    const timer = setInterval(() => {
      statsOf(pc)
        .then((stats) => {
          state.stats = stats;
          state.maxAudioLevel = Math.max(state.maxAudioLevel, stats.audioLevel);
        })
        .catch((error) => fail("getStats", error));
    }, 250);
    timers.push(timer);
  };

  const onMessage = (message) => {
    state.messages.push(message.type);
    switch (message.type) {
      case "event": {
        state.events.push(message.name);
        if (message.name === "connection") {
          state.connection = message.data || {};
          mark("connection");
          state.phase = "connected";
        }
        break;
      }
      case "sdpInvite": {
        mark("offer");
        const data = message.data || {};
        // The live service sends `invite`, the documentation says `sdpOffer`.
        const key = "invite" in data ? "invite" : "sdpOffer" in data ? "sdpOffer" : null;
        const sdp = data.invite || data.sdpOffer || null;
        const first = state.offers.length === 0;
        state.offers.push({ key, t: since(), same: !first && sdp === state.offerSdp });
        if (state.connection === null) fail("protocol", "sdpInvite before event connection");
        if (!sdp) fail("protocol", "sdpInvite without an offer");
        else if (first) {
          state.offerKey = key;
          state.offerSdp = sdp;
          answer(sdp).catch((error) => fail("answer", error));
        } else if (sdp !== state.offerSdp && pc !== null && state.answers > 0) {
          // The protocol has no renegotiation, but a browser takes a new offer
          // as one: answer it on the same peer connection.
          state.offerSdp = sdp;
          reply(sdp).catch((error) => fail("renegotiation", error));
        }
        break;
      }
      case "text": {
        const content = message.content || {};
        state.transcripts.push({ source: content.source, text: content.text, t: since() });
        state.longestText = Math.max(state.longestText, String(content.text || "").length);
        const item = document.createElement("li");
        item.textContent = `${content.source}: ${content.text}`;
        document.getElementById("transcript").append(item);
        break;
      }
      case "conversationResult":
        state.result = message.result || null;
        mark("result");
        break;
      case "error":
        state.serverErrors.push(String((message.data || {}).message));
        break;
      default:
        break; // the service adds message types over time: ignore the unknown
    }
    show();
  };

  const hangUp = () => {
    if (socket && socket.readyState === WebSocket.OPEN) send("terminate", {});
    mark("hangUp");
  };
  window.bbHangUp = hangUp;

  const release = () => {
    for (const timer of timers) clearInterval(timer);
    if (pc) pc.close();
    if (mic) for (const track of mic.getTracks()) track.stop();
    for (const context of contexts) context.close().catch(() => {});
  };

  const start = async () => {
    if (!server || !token) throw new Error("the page needs #server=...&token=...");
    // Ask for the microphone first, as an app does when the user presses "call":
    // echo cancellation, noise suppression and automatic gain, as documented.
    mic = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    measure(mic, state.local, "firstMic");
    mark("mic");
    socket = new WebSocket(`${server}/api/v1/ws/webCall?token=${encodeURIComponent(token)}`);
    socket.addEventListener("open", () => {
      state.socket = "open";
      mark("socketOpen");
      send("initialize", { request: { callType: "webCall" } });
      state.phase = "initialized";
      show();
    });
    socket.addEventListener("message", (event) => {
      if (typeof event.data !== "string") {
        state.problems.push("a binary frame");
        return;
      }
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        state.problems.push("a frame that is not JSON");
        return;
      }
      if (message === null || typeof message !== "object" || Array.isArray(message)) {
        state.problems.push("a frame that is not a JSON object");
        return;
      }
      onMessage(message);
    });
    socket.addEventListener("close", (event) => {
      state.socket = "closed";
      state.connectionAtClose = pc ? pc.connectionState : "new";
      const closed = () => {
        state.close = { code: event.code, reason: event.reason, t: since() };
        state.phase = "closed";
        release();
        show();
      };
      // The figures at the close, before the peer connection goes: the close
      // is published once they are in.
      if (pc === null) return closed();
      statsOf(pc)
        .then((stats) => {
          state.stats = stats;
          state.maxAudioLevel = Math.max(state.maxAudioLevel, stats.audioLevel);
        })
        .catch((error) => fail("getStats", error))
        .finally(closed);
    });
    socket.addEventListener("error", () => fail("socket", "WebSocket error"));
  };

  // What a browser sees, in brief (the test's view of every case).
  Object.defineProperty(window, "report", {
    get: () => ({
      phase: state.phase,
      socket: state.socket,
      events: state.events,
      connectionState: state.close ? state.connectionAtClose : state.connectionState,
      iceConnectionState: state.iceConnectionState,
      offers: state.offers.map((offer) => ({ key: offer.key, same: offer.same })),
      answers: state.answers,
      packetsAtLastAnswer: state.packetsAtLastAnswer,
      offerRejected: state.offerRejected,
      packetsReceived: state.stats ? state.stats.packetsReceived : 0,
      packetsSent: state.stats ? state.stats.packetsSent : 0,
      audioLevel: state.maxAudioLevel,
      texts: state.transcripts.length,
      longestText: state.longestText,
      closeCode: state.close ? state.close.code : null,
      result: state.result ? state.result.status || null : null,
      serverErrors: state.serverErrors,
      problems: state.problems,
      errors: state.errors,
    }),
  });

  start().catch((error) => fail("start", error));
})();
