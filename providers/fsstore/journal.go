package fsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/cradle-sync/cradle/device"
	"github.com/cradle-sync/cradle/internal/fsutil"
	"github.com/cradle-sync/cradle/providers"
)

// swapJournal records device-side swaps in progress: an updated file uploaded under a temporary
// name, about to replace the old one (delete old, rename temporary). A swap is recorded before its
// upload begins: if the session dies at any step, the record tells the next one to finish the
// swap or remove the upload, so that the item is never taken for deleted and no upload is left
// behind. It lives in the partnership's state folder.
type swapJournal struct {
	path string // "" when there is no state folder: no journal
	mu   sync.Mutex
}

type swap struct {
	Tmp   string `json:"tmp"`   // device path of the uploaded content
	Final string `json:"final"` // device path it replaces
	// Size is the upload's size when Sized (journals of earlier versions have none): an upload
	// of another size was cut off.
	Size  int64 `json:"size,omitempty"`
	Sized bool  `json:"sized,omitempty"`
}

func (j *swapJournal) load() ([]swap, error) {
	if j.path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(j.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", j.path, err)
	}
	var out []swap
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("read %s: damaged (%v); delete it to go on (unfinished device updates "+
			"may then show as deleted)", j.path, err)
	}
	return out, nil
}

func (j *swapJournal) save(list []swap) error {
	if len(list) == 0 {
		if err := os.Remove(j.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("write %s: %w", j.path, err)
		}
		return nil
	}
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(j.path, b, fsutil.WriteOptions{TempName: TempName()}); err != nil {
		return fmt.Errorf("write %s: %w", j.path, err)
	}
	return nil
}

// add records a swap before its first irreversible step.
func (j *swapJournal) add(sw swap) error {
	if j.path == "" {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	list, err := j.load()
	if err != nil {
		return err
	}
	return j.save(append(list, sw))
}

// done forgets a finished swap.
func (j *swapJournal) done(sw swap) error {
	if j.path == "" {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	list, err := j.load()
	if err != nil {
		return err
	}
	out := list[:0]
	for _, x := range list {
		if x != sw {
			out = append(out, x)
		}
	}
	return j.save(out)
}

// recover finishes the swaps an interrupted session left in the journal: when the final object is
// gone and the uploaded one is there, complete, the uploaded one takes its place; when the final
// object is still there, the upload is removed (the old content stands and the engine sends it
// again).
func (s *DeviceStore) recover(ctx context.Context) error {
	list, err := s.journal.load()
	if err != nil || len(list) == 0 {
		return err
	}
	for _, sw := range list {
		_, ferr := s.dev.Stat(ctx, s.storage, sw.Final)
		to, terr := s.dev.Stat(ctx, s.storage, sw.Tmp)
		switch {
		case errors.Is(terr, device.ErrNotFound):
			// Nothing uploaded is left: either the swap finished or never began.
		case terr != nil:
			return fmt.Errorf("finish an interrupted update of %s: %w", sw.Final, providers.MapDeviceError(terr))
		case errors.Is(ferr, device.ErrNotFound) && sw.Sized && to.Size != sw.Size:
			// An upload cut off (a device that keeps what it got) and the old version deleted
			// on the device meanwhile: the upload is not a version of the file.
			if err := s.dev.Delete(ctx, s.storage, sw.Tmp); err != nil && !errors.Is(err, device.ErrNotFound) {
				return fmt.Errorf("remove an unfinished upload %s: %w", sw.Tmp, providers.MapDeviceError(err))
			}
		case errors.Is(ferr, device.ErrNotFound):
			if err := s.dev.Rename(ctx, s.storage, sw.Tmp, sw.Final); err != nil {
				return fmt.Errorf("finish an interrupted update of %s: %w", sw.Final, providers.MapDeviceError(err))
			}
			s.logf("files: finished an interrupted update of %s on the device", sw.Final)
		case ferr == nil:
			if err := s.dev.Delete(ctx, s.storage, sw.Tmp); err != nil && !errors.Is(err, device.ErrNotFound) {
				return fmt.Errorf("remove an unfinished upload %s: %w", sw.Tmp, providers.MapDeviceError(err))
			}
		default:
			return fmt.Errorf("finish an interrupted update of %s: %w", sw.Final, providers.MapDeviceError(ferr))
		}
		if err := s.journal.done(sw); err != nil {
			return err
		}
	}
	return nil
}
