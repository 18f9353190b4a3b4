package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// machine describes the computer at one moment: what the figures were measured on.
type machine struct {
	at       time.Time
	cpu      string
	cores    int
	load     string // /proc/loadavg's first three fields
	memTotal string
	kernel   string
	goVer    string
	fs       string // the work folder's file system
}

func (m machine) summary() string {
	return fmt.Sprintf("%s, %d cores, load %s, %s, Go %s", m.cpu, m.cores, m.load, m.kernel, m.goVer)
}

func describeMachine(ctx context.Context, work string) machine {
	m := machine{at: time.Now(), cores: runtime.NumCPU(), cpu: "unknown CPU", goVer: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.load = strings.Join(f[:3], " ")
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for l := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
				m.memTotal = fmt.Sprintf("%.1f GB", float64(kb)/1e6)
			}
		}
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		m.kernel = "Linux " + utsString(u.Release[:])
	}
	if out, err := exec.CommandContext(ctx, "go", "version").Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) >= 3 {
			m.goVer = strings.TrimPrefix(f[2], "go")
		}
	}
	m.fs = fsType(work)
	return m
}

func utsString(b []int8) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		s.WriteByte(byte(c))
	}
	return s.String()
}

// fsType names the file system holding dir, from /proc/self/mounts (the longest mount point that
// contains it).
func fsType(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "unknown"
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "unknown"
	}
	best, typ := "", "unknown"
	for l := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best, typ = mp, f[2]+" ("+f[0]+")"
		}
	}
	return typ
}

// moduleRoot finds the folder of Cradle's go.mod from the working directory.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run the benchmarks from inside Cradle's module (no go.mod found)")
	}
	return filepath.Dir(mod), nil
}
