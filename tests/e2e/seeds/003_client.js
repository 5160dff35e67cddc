// Seed 003's client code, verbatim: its WebSocket, configuration, audio
// sending, result handling and finish() (the microphone capture that feeds
// `worklet` is the browser's; tests/e2e/test_seeds.mjs feeds it instead).
const ws = new WebSocket("wss://stt.example.com/transcribe");
ws.onopen = () => {
  ws.send(JSON.stringify({
    audio_format: "pcm_s16le",
    sample_rate: 16000,
    model: "stt-rt",
  }));
};

worklet.port.onmessage = (e) => {
  if (ws.readyState === WebSocket.OPEN) ws.send(e.data); // raw PCM bytes
};

ws.onmessage = (msg) => {
  const { tokens } = JSON.parse(msg.data);
  for (const t of tokens) {
    if (t.is_final) commit(t.text);   // will not change
    else preview(t.text);             // may still change
  }
};

function finish() {
  ws.send(JSON.stringify({ type: "finalize" })); // ask for last finals
  ws.close();
}
