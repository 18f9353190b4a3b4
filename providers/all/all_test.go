package all

import (
	"testing"

	"github.com/cradle-sync/cradle/providers"
)

func TestBuiltinProvidersRegistered(t *testing.T) {
	for _, name := range []string{"files", "photos", "contacts"} {
		p, err := providers.Lookup(name)
		if err != nil {
			t.Errorf("Lookup(%q) = %v, want the built-in provider", name, err)
			continue
		}
		if p.Description == "" || len(p.Options) == 0 || p.Open == nil {
			t.Errorf("provider %q is declared without description, options or Open: %+v", name, p)
		}
	}
}
