package replica

import (
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// progress counts the bytes read from a backup's files and logs bytes,
// rate and ETA every interval.
type progress struct {
	total int64
	done  atomic.Int64
	start time.Time
	log   zerolog.Logger
	stop  chan struct{}
	ended chan struct{}
}

func startProgress(log zerolog.Logger, total int64, every time.Duration) *progress {
	p := &progress{total: total, start: time.Now(), log: log, stop: make(chan struct{}), ended: make(chan struct{})}
	if every <= 0 {
		every = 5 * time.Second
	}
	go func() {
		defer close(p.ended)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.line(p.log.Info(), "restoring")
			}
		}
	}()
	return p
}

// line adds the progress fields to ev and sends it.
func (p *progress) line(ev *zerolog.Event, msg string) {
	done := p.done.Load()
	el := time.Since(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(done) / el
	}
	ev = ev.Int64("read_bytes", done).Int64("total_bytes", p.total).
		Float64("mb_per_s", round1(rate/1e6)).Float64("elapsed_s", round1(el))
	if p.total > 0 {
		ev = ev.Float64("pct", round1(100*float64(done)/float64(p.total)))
	}
	if rate > 0 && p.total > done {
		ev = ev.Float64("eta_s", round1(float64(p.total-done)/rate))
	}
	ev.Msg(msg)
}

func (p *progress) finish() {
	close(p.stop)
	<-p.ended
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
