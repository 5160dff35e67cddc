// Client-side: Capture and stream microphone audio
async function startAudioStream(wsUrl: string) {
  const ws = new WebSocket(wsUrl);

  const stream = await navigator.mediaDevices.getUserMedia({
    audio: {
      channelCount: 1,
      sampleRate: 16000,
      echoCancellation: true,
      noiseSuppression: true
    }
  });

  const mediaRecorder = new MediaRecorder(stream, {
    mimeType: 'audio/webm;codecs=opus'
  });

  mediaRecorder.ondataavailable = (event) => {
    if (event.data.size > 0 && ws.readyState === WebSocket.OPEN) {
      ws.send(event.data);
    }
  };

  // Send chunks every 250ms for low latency
  mediaRecorder.start(250);

  ws.onmessage = (event) => {
    const data = JSON.parse(event.data);
    if (data.type === 'transcript') {
      updateTranscriptDisplay(data.text, data.is_final);
    }
  };

  return { mediaRecorder, ws, stream };
}
