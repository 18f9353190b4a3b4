package ui

import (
	"embed"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/lang"
)

// The window's translations, in go-i18n's JSON form as fyne's lang package reads them. Every
// message ID is the English text, so a missing translation falls back to English.
//
//go:embed translations/*.json
var translations embed.FS

// Languages are the languages the window speaks, as Settings.Language spells them, with their
// names in their own language. "" follows the system locale.
var Languages = []struct{ Code, Name string }{
	{"", "System"},
	{"en", "English"},
	{"pt", "Português"},
}

// The window's translations are there from the start, in the system's language; New switches
// to the one the settings choose.
func init() {
	if err := SetLanguage(""); err != nil {
		fyne.LogError("ui: load the translations", err)
	}
}

// localeVars are the variables fyne's lang package (through go-locale) reads the system locale
// from, in the order it reads them.
var localeVars = []string{"LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"}

var (
	langMu  sync.Mutex
	langNow = "unset"
)

// SetLanguage makes the window speak code ("en", "pt"), or the system's language when code is
// "". fyne's lang package offers no way to choose: it follows the locale variables, which it
// reads when translations are added. So SetLanguage sets them for the moment it adds the
// window's translations and puts them back right after: the process's environment (which
// provider plugins inherit) stays the user's. Call it on the UI goroutine: fyne's translations
// are not safe for concurrent use. It returns an error for a language the window does not have.
func SetLanguage(code string) error {
	known := false
	for _, l := range Languages {
		known = known || l.Code == code
	}
	if !known {
		return fmt.Errorf("language %q is not available; choose one of: en, pt, or none to follow the system", code)
	}
	langMu.Lock()
	defer langMu.Unlock()
	if code == langNow {
		return nil
	}
	saved := map[string]*string{}
	for _, v := range localeVars {
		if s, ok := os.LookupEnv(v); ok {
			saved[v] = &s
		} else {
			saved[v] = nil
		}
	}
	defer func() {
		for _, v := range localeVars {
			if s := saved[v]; s != nil {
				os.Setenv(v, *s)
			} else {
				os.Unsetenv(v)
			}
		}
	}()
	// go-locale takes the first of LC_ALL, LC_MESSAGES and LANG that is set, and then LANGUAGE
	// unless that one is exactly C or POSIX. C.UTF-8 and the like are not language tags: fyne
	// logs an error for them and falls back to English, so say English.
	effective, name := "", ""
	for _, v := range localeVars[1:] {
		if s := os.Getenv(v); s != "" {
			effective, name = s, v
			break
		}
	}
	want := code
	if want == "" && plainLocale(effective) && os.Getenv("LANGUAGE") == "" {
		want = "en"
	}
	if want != "" {
		os.Setenv("LANGUAGE", want)
		if effective == "C" || effective == "POSIX" {
			os.Setenv(name, want)
		}
	}
	// Adding the translations makes lang read the locale again.
	if err := lang.AddTranslationsFS(translations, "translations"); err != nil {
		return fmt.Errorf("load the window's translations: %w", err)
	}
	langNow = code
	return nil
}

// plainLocale tells whether loc names no language (C, POSIX and their UTF-8 forms, or none).
func plainLocale(loc string) bool {
	base, _, _ := strings.Cut(loc, ".")
	return base == "" || base == "C" || base == "POSIX"
}

// tr translates a message of the window (lang.L with the English text as ID). data, when given,
// fills its {{.Name}} fields.
func tr(msg string, data ...map[string]any) string {
	if len(data) > 0 {
		return lang.L(msg, data[0])
	}
	return lang.L(msg)
}

// trN translates a message with plural forms: its ID is the English "other" form, and its data
// has Count set to n.
func trN(msg string, n int, data ...map[string]any) string {
	d := map[string]any{"Count": n}
	if len(data) > 0 {
		for k, v := range data[0] {
			d[k] = v
		}
	}
	return lang.N(msg, n, d)
}

// declKeys are the message IDs the translation files have, for trDecl.
var declKeys = sync.OnceValue(func() map[string]bool {
	keys := map[string]bool{}
	files, err := translations.ReadDir("translations")
	if err != nil {
		return keys
	}
	for _, f := range files {
		b, err := translations.ReadFile("translations/" + f.Name())
		if err != nil {
			continue
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) == nil {
			for k := range m {
				keys[k] = true
			}
		}
	}
	return keys
})

// trDecl translates a text that comes from a provider's declaration (its description, an
// option's label or help) when the window has a translation for it, and leaves it as it is
// otherwise: plugins declare texts the window cannot know.
func trDecl(s string) string {
	if s != "" && declKeys()[s] {
		return lang.L(s)
	}
	return s
}
