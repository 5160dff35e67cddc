// hark demo: runs on the audio rendering thread. Turns the microphone's float
// samples (mixed to mono) into 20 ms frames of 16-bit little-endian PCM at the
// target rate and posts each frame to the page with its RMS level.
//
// When the AudioContext already runs at the target rate (the usual case: the
// page asks for a 16 kHz context) samples pass straight through. When the
// browser refused such a context, the context runs at the device rate and
// this worklet resamples with a windowed-sinc low-pass filter, so that
// 48 kHz speech does not alias into the 0-8 kHz band the recogniser hears.
'use strict';

const FRAME_MS = 20;
const TABLE_STEPS = 512; // kernel samples per input sample (linear interpolation between)

// Streaming band-limited resampler from inRate to outRate (any ratio).
class Resampler {
  constructor(inRate, outRate) {
    this.step = inRate / outRate; // input samples per output sample
    // Cut off just below the lower of the two Nyquist frequencies, relative
    // to the input rate's Nyquist.
    this.cutoff = 0.92 * Math.min(1, outRate / inRate);
    this.half = Math.ceil(12 / this.cutoff); // half-width in input samples: 12 zero crossings
    const n = this.half * TABLE_STEPS;
    this.table = new Float32Array(n + 2);
    for (let i = 0; i <= n; i++) {
      const x = i / TABLE_STEPS; // distance in input samples
      const arg = Math.PI * this.cutoff * x;
      const sinc = x === 0 ? 1 : Math.sin(arg) / arg;
      const win = 0.5 + 0.5 * Math.cos((Math.PI * x) / this.half); // Hann
      this.table[i] = this.cutoff * sinc * win;
    }
    // Input history: everything from the oldest sample still needed.
    this.buf = new Float32Array(4096); // zeros: starts with half a window of silence
    this.len = this.half;
    this.pos = this.half; // next output's position in buf, in input samples
  }

  kernel(d) {
    const t = Math.abs(d) * TABLE_STEPS;
    const i = t | 0;
    const f = t - i;
    return this.table[i] + f * (this.table[i + 1] - this.table[i]);
  }

  // Appends input samples; calls emit(sample) for each output sample ready.
  push(input, emit) {
    if (this.len + input.length > this.buf.length) {
      const bigger = new Float32Array(Math.max(this.buf.length * 2, this.len + input.length));
      bigger.set(this.buf.subarray(0, this.len));
      this.buf = bigger;
    }
    this.buf.set(input, this.len);
    this.len += input.length;
    const half = this.half;
    while (Math.floor(this.pos) + half < this.len) {
      const centre = Math.floor(this.pos);
      let acc = 0;
      for (let k = centre - half + 1; k <= centre + half; k++) {
        acc += this.buf[k] * this.kernel(this.pos - k);
      }
      emit(acc);
      this.pos += this.step;
    }
    // Drop samples no future output needs.
    const keepFrom = Math.floor(this.pos) - half + 1;
    if (keepFrom > 0) {
      this.buf.copyWithin(0, keepFrom, this.len);
      this.len -= keepFrom;
      this.pos -= keepFrom;
    }
  }
}

class PcmWorklet extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const target = (options.processorOptions && options.processorOptions.targetRate) || sampleRate;
    this.frame = new Int16Array(Math.round((target * FRAME_MS) / 1000));
    this.fill = 0;
    this.sumSquares = 0;
    this.resampler = target === sampleRate ? null : new Resampler(sampleRate, target);
    this.mono = new Float32Array(128);
    this.emit = (s) => this.put(s);
    this.port.postMessage({ type: 'info', inputRate: sampleRate, outputRate: target });
  }

  put(s) {
    const v = s > 1 ? 1 : s < -1 ? -1 : s;
    this.sumSquares += v * v;
    this.frame[this.fill++] = v < 0 ? v * 0x8000 : v * 0x7fff;
    if (this.fill === this.frame.length) {
      const pcm = this.frame.slice(0).buffer;
      const rms = Math.sqrt(this.sumSquares / this.frame.length);
      this.port.postMessage({ type: 'frame', pcm, rms }, [pcm]);
      this.fill = 0;
      this.sumSquares = 0;
    }
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || !input.length) return true; // no source connected (yet)
    const n = input[0].length;
    if (this.mono.length !== n) this.mono = new Float32Array(n);
    const mono = this.mono;
    mono.fill(0);
    for (let c = 0; c < input.length; c++) {
      const ch = input[c];
      for (let i = 0; i < n; i++) mono[i] += ch[i];
    }
    if (input.length > 1) for (let i = 0; i < n; i++) mono[i] /= input.length;
    if (this.resampler) this.resampler.push(mono, this.emit);
    else for (let i = 0; i < n; i++) this.put(mono[i]);
    return true;
  }
}

registerProcessor('hark-pcm', PcmWorklet);
