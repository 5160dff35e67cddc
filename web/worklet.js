// Runs in the audio thread: turns the microphone's float samples into 20 ms
// frames of 16-bit little-endian PCM and posts them to the page.
class PcmWorklet extends AudioWorkletProcessor {
  constructor() {
    super();
    this.frame = new Int16Array(sampleRate / 50);  // 20 ms at the context's rate
    this.fill = 0;
  }
  process(inputs) {
    const input = inputs[0];
    if (input && input.length) {
      const ch = input[0];
      for (let i = 0; i < ch.length; i++) {
        let s = 0;
        for (let c = 0; c < input.length; c++) s += input[c][i];
        s = Math.max(-1, Math.min(1, s / input.length));
        this.frame[this.fill++] = s < 0 ? s * 0x8000 : s * 0x7fff;
        if (this.fill === this.frame.length) {
          this.port.postMessage(this.frame.buffer.slice(0));
          this.fill = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor('pcm-worklet', PcmWorklet);
