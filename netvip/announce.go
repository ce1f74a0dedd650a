package netvip

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/pghook/pghook/internal/ctxtime"
	"github.com/rs/zerolog"
)

// AnnounceRequest asks for rounds of announcements of an address: each
// round is a gratuitous ARP request and reply (IPv4) or an unsolicited
// neighbour advertisement with the Override flag (IPv6).
type AnnounceRequest struct {
	Interface string
	Addr      netip.Addr
	Rounds    int           // number of rounds
	Interval  time.Duration // between rounds
	Delay     time.Duration // before the first round
}

func (r AnnounceRequest) check() error {
	if err := checkIfName(r.Interface); err != nil {
		return err
	}
	switch {
	case !r.Addr.IsValid() || r.Addr.Zone() != "" || r.Addr.Is4In6() || !r.Addr.IsGlobalUnicast():
		return fmt.Errorf("address %v is not a unicast IPv4 or IPv6 address", r.Addr)
	case r.Rounds < 0, r.Interval < 0, r.Delay < 0:
		return fmt.Errorf("rounds %d, interval %v and delay %v must not be negative", r.Rounds, r.Interval, r.Delay)
	}
	return nil
}

// bounded refuses a request that would flood the link: more than
// MaxAnnouncements rounds, an interval outside MinAnnounceInterval to
// MaxAnnounceInterval, or a longer delay than that. It applies to requests
// read from a command line; settings are bounded by parseSettings.
func (r AnnounceRequest) bounded() error {
	switch {
	case r.Rounds > MaxAnnouncements:
		return fmt.Errorf("rounds %d: at most %d", r.Rounds, MaxAnnouncements)
	case r.Rounds > 1 && (r.Interval < MinAnnounceInterval || r.Interval > MaxAnnounceInterval):
		return fmt.Errorf("interval %v: want %v to %v", r.Interval, MinAnnounceInterval, MaxAnnounceInterval)
	case r.Delay > MaxAnnounceInterval:
		return fmt.Errorf("delay %v: at most %v", r.Delay, MaxAnnounceInterval)
	}
	return nil
}

// Args returns r as command-line arguments that ParseAnnounceArgs reads
// back.
func (r AnnounceRequest) Args() []string {
	return []string{
		"--interface", r.Interface,
		"--address", r.Addr.String(),
		"--rounds", strconv.Itoa(r.Rounds),
		"--interval", r.Interval.String(),
		"--delay", r.Delay.String(),
	}
}

// ParseAnnounceArgs parses the arguments that AnnounceRequest.Args makes.
// The CLI command that runs a detached announcer should pass its arguments
// here unparsed (urfave/cli: SkipFlagParsing).
func ParseAnnounceArgs(args []string) (AnnounceRequest, error) {
	var r AnnounceRequest
	var addr string
	fs := flag.NewFlagSet("announce", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&r.Interface, "interface", "", "interface")
	fs.StringVar(&addr, "address", "", "address")
	fs.IntVar(&r.Rounds, "rounds", defaultAnnouncements, "rounds")
	fs.DurationVar(&r.Interval, "interval", defaultAnnounceInterval, "interval")
	fs.DurationVar(&r.Delay, "delay", 0, "delay")
	if err := fs.Parse(args); err != nil {
		return AnnounceRequest{}, fmt.Errorf("netvip: parsing announce arguments %q: %w", args, err)
	}
	if fs.NArg() > 0 {
		return AnnounceRequest{}, fmt.Errorf("netvip: parsing announce arguments: unexpected %q", fs.Args())
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return AnnounceRequest{}, fmt.Errorf("netvip: parsing announce arguments: %w", err)
	}
	r.Addr = a
	if err := errors.Join(r.check(), r.bounded()); err != nil {
		return AnnounceRequest{}, fmt.Errorf("netvip: announce: %w", err)
	}
	return r, nil
}

// Announce sends r.Rounds rounds of announcements, the first after
// r.Delay, the others r.Interval apart. Before each round it checks that
// the address is still on the interface and stops, returning nil, when it
// is not: that is how a Release stops announcements, even those of another
// process. A failed round is logged and the next one tried; the error of
// the last failed round is returned. It needs CAP_NET_RAW.
func Announce(ctx context.Context, r AnnounceRequest, log zerolog.Logger) error {
	return announce(ctx, osSystem{}, r, log)
}

func announce(ctx context.Context, sys system, r AnnounceRequest, log zerolog.Logger) error {
	if err := r.check(); err != nil {
		return fmt.Errorf("announcing %v on %s: %w", r.Addr, r.Interface, err)
	}
	log = log.With().Str("vip", r.Addr.String()).Str("interface", r.Interface).Logger()
	var last error
	for i := 0; i < r.Rounds; i++ {
		wait := r.Interval
		if i == 0 {
			wait = r.Delay
		}
		if err := ctxtime.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("announcing %v on %s: %w", r.Addr, r.Interface, err)
		}
		li, err := sys.link(r.Interface)
		if errors.Is(err, errNoLink) {
			log.Info().Msg("interface is gone; stopping announcements")
			return nil
		}
		if err == nil {
			var held bool
			held, err = addrUsable(sys, li, r.Addr)
			if err == nil && !held {
				log.Info().Int("sent", i).Msg("vip no longer on the interface; stopping announcements")
				return nil
			}
		}
		if err == nil {
			err = sys.announce(li, r.Addr)
		}
		if err != nil {
			last = fmt.Errorf("announcing %v on %s: %w", r.Addr, r.Interface, err)
			log.Warn().Err(err).Int("round", i+1).Msg("announcement round failed")
			continue
		}
		log.Debug().Int("round", i+1).Int("rounds", r.Rounds).Msg("vip announced")
	}
	return last
}

// addrUsable reports whether a is on li with any prefix length and usable.
func addrUsable(sys system, li linkInfo, a netip.Addr) (bool, error) {
	as, err := sys.addrs(li, a)
	if err != nil {
		return false, err
	}
	for _, x := range as {
		if x.Prefix.Addr() == a && x.Flags&(ifaTentative|ifaDADFailed) == 0 {
			return true, nil
		}
	}
	return false, nil
}

// Announcer runs the announcement rounds that follow the first one, which
// Hold sends itself.
type Announcer interface {
	// Announce starts or runs the rounds of r. It returns an error only
	// if it could not start them.
	Announce(ctx context.Context, r AnnounceRequest) error
}

// InProcess runs the rounds in the calling goroutine: Hold returns after
// the last round. For tests and long-running processes that call Hold
// from a goroutine of their own.
type InProcess struct {
	Log zerolog.Logger
	sys system // nil: the real one
}

// Announce implements Announcer.
func (a InProcess) Announce(ctx context.Context, r AnnounceRequest) error {
	sys := a.sys
	if sys == nil {
		sys = osSystem{}
	}
	return announce(ctx, sys, r, a.Log)
}

// Background runs the rounds in a new goroutine under Ctx, not under the
// context given to Hold, and returns at once; errors are logged. For
// `pghook vip watch`.
type Background struct {
	Ctx context.Context
	Log zerolog.Logger
	sys system // nil: the real one
}

// Announce implements Announcer.
func (a Background) Announce(_ context.Context, r AnnounceRequest) error {
	if err := r.check(); err != nil {
		return fmt.Errorf("announcing %v on %s: %w", r.Addr, r.Interface, err)
	}
	sys := a.sys
	if sys == nil {
		sys = osSystem{}
	}
	go func() {
		if err := announce(a.Ctx, sys, r, a.Log); err != nil && a.Ctx.Err() == nil {
			a.Log.Warn().Err(err).Msg("announcing the vip")
		}
	}()
	return nil
}

// Spawner runs the rounds in a detached process that outlives the caller
// (see SpawnDetached): Patroni SIGKILLs a running callback, and all its
// descendants, when the next callback arrives. It runs
// `Self Command... <AnnounceRequest.Args()...>`, for example
// `/usr/bin/pghook vip announce --interface eth0 ...`; that command must
// call RunDetached first, then ParseAnnounceArgs and Announce.
type Spawner struct {
	Self    string   // executable, usually from os.Executable
	Command []string // arguments before the request's, e.g. {"vip", "announce"}
	// Fixed passes Command alone, without the request: the VIP helper's
	// announcer takes what to announce from its root-owned config
	// (FollowUp), never from its arguments.
	Fixed bool
	// OnSpawnError, when set, receives the error of a middle process that
	// could not start the announcer (if the caller still runs by then).
	OnSpawnError func(error)
}

// Announce implements Announcer. It returns once the middle process of the
// detached spawn has been started (StartDetached), not when it has started
// the announcer: the first round is sent already, and a take's next step
// (the DNS record, the caller's exit) must not wait for a process start. A
// middle that fails to start the announcer is reported by OnSpawnError.
func (s Spawner) Announce(_ context.Context, r AnnounceRequest) error {
	if err := r.check(); err != nil {
		return fmt.Errorf("announcing %v on %s: %w", r.Addr, r.Interface, err)
	}
	args := slices.Clone(s.Command)
	if !s.Fixed {
		args = append(args, r.Args()...)
	}
	wait, err := StartDetached(s.Self, args)
	if err != nil {
		return fmt.Errorf("announcing %v on %s: %w", r.Addr, r.Interface, err)
	}
	go func() {
		if err := wait(); err != nil && s.OnSpawnError != nil {
			s.OnSpawnError(fmt.Errorf("announcing %v on %s: %w", r.Addr, r.Interface, err))
		}
	}()
	return nil
}
