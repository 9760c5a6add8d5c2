/* The wall's replay (pages/wall_replay.py): play moves the time slider in the browser, one step a second, by the
   chosen number of minutes; each move is one cheap request to the server. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  nanhai_replay: {
    /* play / pause, a tick of play, or "back to live": [interval disabled, slider value, play button's text] */
    play: function (_clicks, _ticks, _live, stopped, minute, speed, labels) {
      var no = window.dash_clientside.no_update;
      var triggered = window.dash_clientside.callback_context.triggered;
      var by = triggered && triggered.length ? triggered[0].prop_id.split(".")[0] : "";
      var last = labels.last;
      var at = minute || 0;
      if (by === "wall-replay-live") {
        return [true, no, labels.play];
      }
      if (by === "wall-replay-play") {
        if (stopped) {
          /* played to the end: start the day again */
          return [false, at >= last ? 0 : no, labels.pause];
        }
        return [true, no, labels.play];
      }
      if (by === "wall-replay-tick" && !stopped) {
        var next = Math.min(at + (speed || 1), last);
        return next >= last ? [true, next, labels.play] : [no, next, no];
      }
      return [no, no, no];
    },
  },
});
