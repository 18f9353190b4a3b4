// Package contacts is Cradle's address-book provider: it syncs a vdir folder on the desktop (one
// vCard per ".vcf" file, as khard and vdirsyncer keep it) with a contacts file on the device
// (many cards in one ".vcf", as a phone's contacts app exports and imports it).
//
// Each card is an item, named by its UID (or, for a card without one, by a derived ID that stays
// stable across edits). Its fields are change units (N, FN, TEL, EMAIL, ADR, ORG, ...; all fields
// of one name form one unit), so a phone number edited on the device and an e-mail address edited
// on the desktop merge without a conflict, and only the same field edited on both sides is one.
//
// Cards are parsed with github.com/emersion/go-vcard. vCard 2.1 as Android writes it
// (QUOTED-PRINTABLE with soft line breaks, CHARSET parameters, nameless parameters such as
// TEL;CELL, base64 photos in 2.1 layout) is decoded by a small pre-pass before go-vcard sees it.
// The desktop folder is written in vCard 3.0 (khard's default; every CardDAV server reads it); the
// device file keeps the version it has (2.1, 3.0 or 4.0; 3.0 for a new file). Properties Cradle
// does not know survive every round trip, and a card that cannot be parsed is reported with its
// file and line, left out of the sync and never rewritten away.
//
// The package map, and what a change unit is to the engine, are in docs/design.md.
package contacts

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/cradle-sync/cradle/providers"
	"github.com/cradle-sync/cradle/providers/fsstore"
	"github.com/cradle-sync/cradle/providers/versions"
)

// Option names.
const (
	OptDesktop    = "desktop"
	OptDevicePath = providers.OptDevicePath
)

// Provider is the declaration of the contacts provider; init registers it.
var Provider = providers.Provider{
	Name:        "contacts",
	Description: "An address book folder (one .vcf per contact, as khard and vdirsyncer keep it) with the device's contacts file",
	Icon:        "account",
	Options: []providers.Option{
		{
			Name:     OptDesktop,
			Label:    "Address book folder",
			Help:     "the desktop folder holding one .vcf file per contact (a vdir)",
			Kind:     providers.KindFolder,
			Required: true,
		},
		{
			Name:    OptDevicePath,
			Label:   "Contacts file on the device",
			Help:    "the vCard file on the device holding all contacts, PATH or STORAGE:PATH",
			Kind:    providers.KindDevicePath,
			Default: DefaultDevicePath,
		},
	},
	Directions: providers.Directions,
	Open:       open,
}

func init() { providers.Register(Provider) }

// open opens one partnership's stores.
func open(ctx context.Context, env providers.Env) (*providers.Instance, error) {
	dir := env.Options[OptDesktop]
	if dir == "" {
		return nil, fmt.Errorf("contacts: option %s is missing: set it to the address book folder", OptDesktop)
	}
	desk, err := NewDesktop(dir, nil)
	if err != nil {
		return nil, err
	}
	meta := filepath.Join(desk.Dir(), fsstore.MetaDir)
	set := &versions.Set{Root: desk.Dir(), TempName: fsstore.TempName, Label: Label, Units: Units,
		Desktop:    versions.NewDir(filepath.Join(meta, "versions"), versions.Desktop),
		DeviceHere: versions.NewDir(filepath.Join(meta, "device-versions"), versions.Device)}
	desk.KeepVersions(set.Desktop)
	inst := &providers.Instance{Desktop: desk, Close: func() error { return nil }, Versions: set}
	if env.Device == nil {
		return inst, nil
	}
	dev, err := NewDeviceFile(env.Device, env.Options[OptDevicePath], env.StateDir, nil)
	if err != nil {
		return nil, err
	}
	dev.KeepVersions(set.DeviceHere, desk.FileFor)
	dev.DeferUploads() // the engine persists each batch's cards and flushes once a session
	inst.Device = dev
	return inst, nil
}
