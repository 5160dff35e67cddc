// Seed 002's client code, verbatim (its class and usage).
class TranscriptionClient {
constructor(url) {
this.url = url;
this.ws = null;
this.onTranscript = null;
}
connect() {
this.ws = new WebSocket(this.url);
this.ws.onmessage = (event) => {
const data = JSON.parse(event.data);
if (this.onTranscript) {
this.onTranscript(data.transcript, data.is_final);
}
};
this.ws.onclose = () => setTimeout(() => this.connect(), 1000);
}
sendAudio(chunk) {
if (this.ws?.readyState === WebSocket.OPEN) {
this.ws.send(chunk);
}
}
}
// Usage
const client = new TranscriptionClient('ws://localhost:8000/ws/transcribe');
client.onTranscript = (text, isFinal) => {
console.log(isFinal ? `FINAL: ${text}` : `interim: ${text}`);
};
client.connect();
