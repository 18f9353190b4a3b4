package mtp

import "fmt"

// OpCode is a PTP/MTP operation code.
type OpCode uint16

// ResponseCode is the code of a response container.
type ResponseCode uint16

// EventCode is the code of an event container.
type EventCode uint16

// PropCode is an MTP object property code.
type PropCode uint16

// FormatCode is a PTP/MTP object format code.
type FormatCode uint16

// DataType is the type code of a property value.
type DataType uint16

// Operations (PTP 1.1, MTP 1.1 and Android's extensions).
const (
	OpGetDeviceInfo           OpCode = 0x1001
	OpOpenSession             OpCode = 0x1002
	OpCloseSession            OpCode = 0x1003
	OpGetStorageIDs           OpCode = 0x1004
	OpGetStorageInfo          OpCode = 0x1005
	OpGetNumObjects           OpCode = 0x1006
	OpGetObjectHandles        OpCode = 0x1007
	OpGetObjectInfo           OpCode = 0x1008
	OpGetObject               OpCode = 0x1009
	OpGetThumb                OpCode = 0x100A
	OpDeleteObject            OpCode = 0x100B
	OpSendObjectInfo          OpCode = 0x100C
	OpSendObject              OpCode = 0x100D
	OpInitiateCapture         OpCode = 0x100E
	OpFormatStore             OpCode = 0x100F
	OpResetDevice             OpCode = 0x1010
	OpSelfTest                OpCode = 0x1011
	OpSetObjectProtection     OpCode = 0x1012
	OpPowerDown               OpCode = 0x1013
	OpGetDevicePropDesc       OpCode = 0x1014
	OpGetDevicePropValue      OpCode = 0x1015
	OpSetDevicePropValue      OpCode = 0x1016
	OpResetDevicePropValue    OpCode = 0x1017
	OpTerminateOpenCapture    OpCode = 0x1018
	OpMoveObject              OpCode = 0x1019
	OpCopyObject              OpCode = 0x101A
	OpGetPartialObject        OpCode = 0x101B
	OpInitiateOpenCapture     OpCode = 0x101C
	OpGetObjectPropsSupported OpCode = 0x9801
	OpGetObjectPropDesc       OpCode = 0x9802
	OpGetObjectPropValue      OpCode = 0x9803
	OpSetObjectPropValue      OpCode = 0x9804
	OpGetObjectPropList       OpCode = 0x9805
	OpSetObjectPropList       OpCode = 0x9806
	OpGetInterdependentDesc   OpCode = 0x9807
	OpSendObjectPropList      OpCode = 0x9808
	OpGetObjectReferences     OpCode = 0x9810
	OpSetObjectReferences     OpCode = 0x9811
	OpSkip                    OpCode = 0x9820
	OpGetPartialObject64      OpCode = 0x95C1 // Android
	OpSendPartialObject       OpCode = 0x95C2 // Android
	OpTruncateObject          OpCode = 0x95C3 // Android
	OpBeginEditObject         OpCode = 0x95C4 // Android
	OpEndEditObject           OpCode = 0x95C5 // Android
)

var opNames = map[OpCode]string{
	OpGetDeviceInfo: "GetDeviceInfo", OpOpenSession: "OpenSession", OpCloseSession: "CloseSession",
	OpGetStorageIDs: "GetStorageIDs", OpGetStorageInfo: "GetStorageInfo", OpGetNumObjects: "GetNumObjects",
	OpGetObjectHandles: "GetObjectHandles", OpGetObjectInfo: "GetObjectInfo", OpGetObject: "GetObject",
	OpGetThumb: "GetThumb", OpDeleteObject: "DeleteObject", OpSendObjectInfo: "SendObjectInfo",
	OpSendObject: "SendObject", OpInitiateCapture: "InitiateCapture", OpFormatStore: "FormatStore",
	OpResetDevice: "ResetDevice", OpSelfTest: "SelfTest", OpSetObjectProtection: "SetObjectProtection",
	OpPowerDown: "PowerDown", OpGetDevicePropDesc: "GetDevicePropDesc",
	OpGetDevicePropValue: "GetDevicePropValue", OpSetDevicePropValue: "SetDevicePropValue",
	OpResetDevicePropValue: "ResetDevicePropValue", OpTerminateOpenCapture: "TerminateOpenCapture",
	OpMoveObject: "MoveObject", OpCopyObject: "CopyObject", OpGetPartialObject: "GetPartialObject",
	OpInitiateOpenCapture: "InitiateOpenCapture", OpGetObjectPropsSupported: "GetObjectPropsSupported",
	OpGetObjectPropDesc: "GetObjectPropDesc", OpGetObjectPropValue: "GetObjectPropValue",
	OpSetObjectPropValue: "SetObjectPropValue", OpGetObjectPropList: "GetObjectPropList",
	OpSetObjectPropList: "SetObjectPropList", OpGetInterdependentDesc: "GetInterdependentPropDesc",
	OpSendObjectPropList: "SendObjectPropList", OpGetObjectReferences: "GetObjectReferences",
	OpSetObjectReferences: "SetObjectReferences", OpSkip: "Skip",
	OpGetPartialObject64: "GetPartialObject64", OpSendPartialObject: "SendPartialObject",
	OpTruncateObject: "TruncateObject", OpBeginEditObject: "BeginEditObject", OpEndEditObject: "EndEditObject",
}

// String returns the operation's name, or its code in hex.
func (c OpCode) String() string { return codeName(opNames, c, "operation") }

// Responses.
const (
	RespUndefined                       ResponseCode = 0x2000
	RespOK                              ResponseCode = 0x2001
	RespGeneralError                    ResponseCode = 0x2002
	RespSessionNotOpen                  ResponseCode = 0x2003
	RespInvalidTransactionID            ResponseCode = 0x2004
	RespOperationNotSupported           ResponseCode = 0x2005
	RespParameterNotSupported           ResponseCode = 0x2006
	RespIncompleteTransfer              ResponseCode = 0x2007
	RespInvalidStorageID                ResponseCode = 0x2008
	RespInvalidObjectHandle             ResponseCode = 0x2009
	RespDevicePropNotSupported          ResponseCode = 0x200A
	RespInvalidObjectFormatCode         ResponseCode = 0x200B
	RespStoreFull                       ResponseCode = 0x200C
	RespObjectWriteProtected            ResponseCode = 0x200D
	RespStoreReadOnly                   ResponseCode = 0x200E
	RespAccessDenied                    ResponseCode = 0x200F
	RespNoThumbnailPresent              ResponseCode = 0x2010
	RespSelfTestFailed                  ResponseCode = 0x2011
	RespPartialDeletion                 ResponseCode = 0x2012
	RespStoreNotAvailable               ResponseCode = 0x2013
	RespSpecificationByFormatUnsupp     ResponseCode = 0x2014
	RespNoValidObjectInfo               ResponseCode = 0x2015
	RespInvalidCodeFormat               ResponseCode = 0x2016
	RespUnknownVendorCode               ResponseCode = 0x2017
	RespCaptureAlreadyTerminated        ResponseCode = 0x2018
	RespDeviceBusy                      ResponseCode = 0x2019
	RespInvalidParentObject             ResponseCode = 0x201A
	RespInvalidDevicePropFormat         ResponseCode = 0x201B
	RespInvalidDevicePropValue          ResponseCode = 0x201C
	RespInvalidParameter                ResponseCode = 0x201D
	RespSessionAlreadyOpen              ResponseCode = 0x201E
	RespTransactionCancelled            ResponseCode = 0x201F
	RespSpecificationOfDestinationUnsup ResponseCode = 0x2020
	RespInvalidObjectPropCode           ResponseCode = 0xA801
	RespInvalidObjectPropFormat         ResponseCode = 0xA802
	RespInvalidObjectPropValue          ResponseCode = 0xA803
	RespInvalidObjectReference          ResponseCode = 0xA804
	RespGroupNotSupported               ResponseCode = 0xA805
	RespInvalidDataset                  ResponseCode = 0xA806
	RespSpecificationByGroupUnsupported ResponseCode = 0xA807
	RespSpecificationByDepthUnsupported ResponseCode = 0xA808
	RespObjectTooLarge                  ResponseCode = 0xA809
	RespObjectPropNotSupported          ResponseCode = 0xA80A
)

var respNames = map[ResponseCode]string{
	RespUndefined: "Undefined", RespOK: "OK", RespGeneralError: "GeneralError",
	RespSessionNotOpen: "SessionNotOpen", RespInvalidTransactionID: "InvalidTransactionID",
	RespOperationNotSupported: "OperationNotSupported", RespParameterNotSupported: "ParameterNotSupported",
	RespIncompleteTransfer: "IncompleteTransfer", RespInvalidStorageID: "InvalidStorageID",
	RespInvalidObjectHandle: "InvalidObjectHandle", RespDevicePropNotSupported: "DevicePropNotSupported",
	RespInvalidObjectFormatCode: "InvalidObjectFormatCode", RespStoreFull: "StoreFull",
	RespObjectWriteProtected: "ObjectWriteProtected", RespStoreReadOnly: "StoreReadOnly",
	RespAccessDenied: "AccessDenied", RespNoThumbnailPresent: "NoThumbnailPresent",
	RespSelfTestFailed: "SelfTestFailed", RespPartialDeletion: "PartialDeletion",
	RespStoreNotAvailable: "StoreNotAvailable", RespSpecificationByFormatUnsupp: "SpecificationByFormatUnsupported",
	RespNoValidObjectInfo: "NoValidObjectInfo", RespInvalidCodeFormat: "InvalidCodeFormat",
	RespUnknownVendorCode: "UnknownVendorCode", RespCaptureAlreadyTerminated: "CaptureAlreadyTerminated",
	RespDeviceBusy: "DeviceBusy", RespInvalidParentObject: "InvalidParentObject",
	RespInvalidDevicePropFormat: "InvalidDevicePropFormat", RespInvalidDevicePropValue: "InvalidDevicePropValue",
	RespInvalidParameter: "InvalidParameter", RespSessionAlreadyOpen: "SessionAlreadyOpen",
	RespTransactionCancelled:            "TransactionCancelled",
	RespSpecificationOfDestinationUnsup: "SpecificationOfDestinationUnsupported",
	RespInvalidObjectPropCode:           "InvalidObjectPropCode", RespInvalidObjectPropFormat: "InvalidObjectPropFormat",
	RespInvalidObjectPropValue: "InvalidObjectPropValue", RespInvalidObjectReference: "InvalidObjectReference",
	RespGroupNotSupported: "GroupNotSupported", RespInvalidDataset: "InvalidDataset",
	RespSpecificationByGroupUnsupported: "SpecificationByGroupUnsupported",
	RespSpecificationByDepthUnsupported: "SpecificationByDepthUnsupported",
	RespObjectTooLarge:                  "ObjectTooLarge", RespObjectPropNotSupported: "ObjectPropNotSupported",
}

// String returns the response's name, or its code in hex.
func (c ResponseCode) String() string { return codeName(respNames, c, "response") }

// Events.
const (
	EventUndefined               EventCode = 0x4000
	EventCancelTransaction       EventCode = 0x4001
	EventObjectAdded             EventCode = 0x4002
	EventObjectRemoved           EventCode = 0x4003
	EventStoreAdded              EventCode = 0x4004
	EventStoreRemoved            EventCode = 0x4005
	EventDevicePropChanged       EventCode = 0x4006
	EventObjectInfoChanged       EventCode = 0x4007
	EventDeviceInfoChanged       EventCode = 0x4008
	EventRequestObjectTransfer   EventCode = 0x4009
	EventStoreFull               EventCode = 0x400A
	EventDeviceReset             EventCode = 0x400B
	EventStorageInfoChanged      EventCode = 0x400C
	EventCaptureComplete         EventCode = 0x400D
	EventUnreportedStatus        EventCode = 0x400E
	EventObjectPropChanged       EventCode = 0xC801
	EventObjectPropDescChanged   EventCode = 0xC802
	EventObjectReferencesChanged EventCode = 0xC803
)

var eventNames = map[EventCode]string{
	EventUndefined: "Undefined", EventCancelTransaction: "CancelTransaction",
	EventObjectAdded: "ObjectAdded", EventObjectRemoved: "ObjectRemoved", EventStoreAdded: "StoreAdded",
	EventStoreRemoved: "StoreRemoved", EventDevicePropChanged: "DevicePropChanged",
	EventObjectInfoChanged: "ObjectInfoChanged", EventDeviceInfoChanged: "DeviceInfoChanged",
	EventRequestObjectTransfer: "RequestObjectTransfer", EventStoreFull: "StoreFull",
	EventDeviceReset: "DeviceReset", EventStorageInfoChanged: "StorageInfoChanged",
	EventCaptureComplete: "CaptureComplete", EventUnreportedStatus: "UnreportedStatus",
	EventObjectPropChanged: "ObjectPropChanged", EventObjectPropDescChanged: "ObjectPropDescChanged",
	EventObjectReferencesChanged: "ObjectReferencesChanged",
}

// String returns the event's name, or its code in hex.
func (c EventCode) String() string { return codeName(eventNames, c, "event") }

// Object properties (MTP 1.1 appendix B; the ones Cradle reads or writes, and the common media
// ones so debug output names them).
const (
	PropStorageID                PropCode = 0xDC01
	PropObjectFormat             PropCode = 0xDC02
	PropProtectionStatus         PropCode = 0xDC03
	PropObjectSize               PropCode = 0xDC04
	PropAssociationType          PropCode = 0xDC05
	PropAssociationDesc          PropCode = 0xDC06
	PropObjectFileName           PropCode = 0xDC07
	PropDateCreated              PropCode = 0xDC08
	PropDateModified             PropCode = 0xDC09
	PropKeywords                 PropCode = 0xDC0A
	PropParentObject             PropCode = 0xDC0B
	PropAllowedFolderContents    PropCode = 0xDC0C
	PropHidden                   PropCode = 0xDC0D
	PropSystemObject             PropCode = 0xDC0E
	PropPersistentUniqueObjectID PropCode = 0xDC41
	PropSyncID                   PropCode = 0xDC42
	PropPropertyBag              PropCode = 0xDC43
	PropName                     PropCode = 0xDC44
	PropCreatedBy                PropCode = 0xDC45
	PropArtist                   PropCode = 0xDC46
	PropDateAuthored             PropCode = 0xDC47
	PropDescription              PropCode = 0xDC48
	PropDateAdded                PropCode = 0xDC4E
	PropNonConsumable            PropCode = 0xDC4F
	PropRepresentativeSampleFmt  PropCode = 0xDC81
	PropWidth                    PropCode = 0xDC87
	PropHeight                   PropCode = 0xDC88
	PropDuration                 PropCode = 0xDC89
	PropRating                   PropCode = 0xDC8A
	PropTrack                    PropCode = 0xDC8B
	PropGenre                    PropCode = 0xDC8C
	PropUseCount                 PropCode = 0xDC91
	PropOriginalReleaseDate      PropCode = 0xDC99
	PropAlbumName                PropCode = 0xDC9A
	PropAlbumArtist              PropCode = 0xDC9B
	PropDisplayName              PropCode = 0xDCE0
	PropBitrateType              PropCode = 0xDE92
	PropSampleRate               PropCode = 0xDE93
	PropNumberOfChannels         PropCode = 0xDE94
	PropAudioBitRate             PropCode = 0xDE9A
	PropAudioWAVECodec           PropCode = 0xDE99
	PropVideoBitRate             PropCode = 0xDE9C
)

var propNames = map[PropCode]string{
	PropStorageID: "StorageID", PropObjectFormat: "ObjectFormat", PropProtectionStatus: "ProtectionStatus",
	PropObjectSize: "ObjectSize", PropAssociationType: "AssociationType", PropAssociationDesc: "AssociationDesc",
	PropObjectFileName: "ObjectFileName", PropDateCreated: "DateCreated", PropDateModified: "DateModified",
	PropKeywords: "Keywords", PropParentObject: "ParentObject", PropAllowedFolderContents: "AllowedFolderContents",
	PropHidden: "Hidden", PropSystemObject: "SystemObject",
	PropPersistentUniqueObjectID: "PersistentUniqueObjectIdentifier", PropSyncID: "SyncID",
	PropPropertyBag: "PropertyBag", PropName: "Name", PropCreatedBy: "CreatedBy", PropArtist: "Artist",
	PropDateAuthored: "DateAuthored", PropDescription: "Description", PropDateAdded: "DateAdded",
	PropNonConsumable: "NonConsumable", PropRepresentativeSampleFmt: "RepresentativeSampleFormat",
	PropWidth: "Width", PropHeight: "Height", PropDuration: "Duration", PropRating: "Rating",
	PropTrack: "Track", PropGenre: "Genre", PropUseCount: "UseCount",
	PropOriginalReleaseDate: "OriginalReleaseDate", PropAlbumName: "AlbumName",
	PropAlbumArtist: "AlbumArtist", PropDisplayName: "DisplayName", PropBitrateType: "BitrateType",
	PropSampleRate: "SampleRate", PropNumberOfChannels: "NumberOfChannels",
	PropAudioBitRate: "AudioBitRate", PropAudioWAVECodec: "AudioWAVECodec", PropVideoBitRate: "VideoBitRate",
}

// String returns the property's name, or its code in hex.
func (c PropCode) String() string { return codeName(propNames, c, "property") }

// Object formats.
const (
	FormatUndefined    FormatCode = 0x3000
	FormatAssociation  FormatCode = 0x3001 // a folder
	FormatScript       FormatCode = 0x3002
	FormatExecutable   FormatCode = 0x3003
	FormatText         FormatCode = 0x3004
	FormatHTML         FormatCode = 0x3005
	FormatDPOF         FormatCode = 0x3006
	FormatAIFF         FormatCode = 0x3007
	FormatWAV          FormatCode = 0x3008
	FormatMP3          FormatCode = 0x3009
	FormatAVI          FormatCode = 0x300A
	FormatMPEG         FormatCode = 0x300B
	FormatASF          FormatCode = 0x300C
	FormatEXIFJPEG     FormatCode = 0x3801
	FormatTIFFEP       FormatCode = 0x3802
	FormatBMP          FormatCode = 0x3804
	FormatGIF          FormatCode = 0x3807
	FormatJFIF         FormatCode = 0x3808
	FormatPNG          FormatCode = 0x380B
	FormatTIFF         FormatCode = 0x380D
	FormatWMA          FormatCode = 0xB901
	FormatOGG          FormatCode = 0xB902
	FormatAAC          FormatCode = 0xB903
	FormatFLAC         FormatCode = 0xB906
	FormatWMV          FormatCode = 0xB981
	FormatMP4          FormatCode = 0xB982
	Format3GP          FormatCode = 0xB984
	FormatAbstractAVPL FormatCode = 0xBA05
	FormatM3U          FormatCode = 0xBA11
	FormatVCard2       FormatCode = 0xBB82
	FormatVCard3       FormatCode = 0xBB83
	FormatICalendar    FormatCode = 0xBE02
	FormatXMLDocument  FormatCode = 0xBA82
	FormatMSWord       FormatCode = 0xBA83
	FormatMSExcel      FormatCode = 0xBA85
	FormatMSPowerpoint FormatCode = 0xBA86
)

// Dataset field values.
const (
	// AssociationGenericFolder is the AssociationType of a plain folder.
	AssociationGenericFolder uint16 = 0x0001
	// StorageFixedRAM and StorageRemovableRAM are StorageInfo.StorageType values.
	StorageFixedRAM     uint16 = 0x0003
	StorageRemovableRAM uint16 = 0x0004
	StorageRemovableROM uint16 = 0x0002
	// FilesystemGenericHierarchical is StorageInfo.FilesystemType of a folder tree.
	FilesystemGenericHierarchical uint16 = 0x0002
	// AccessReadWrite, AccessReadOnly and AccessReadOnlyWithDelete are
	// StorageInfo.AccessCapability values.
	AccessReadWrite          uint16 = 0x0000
	AccessReadOnly           uint16 = 0x0001
	AccessReadOnlyWithDelete uint16 = 0x0002
)

var formatNames = map[FormatCode]string{
	FormatUndefined: "Undefined", FormatAssociation: "Association", FormatScript: "Script",
	FormatExecutable: "Executable", FormatText: "Text", FormatHTML: "HTML", FormatDPOF: "DPOF",
	FormatAIFF: "AIFF", FormatWAV: "WAV", FormatMP3: "MP3", FormatAVI: "AVI", FormatMPEG: "MPEG",
	FormatASF: "ASF", FormatEXIFJPEG: "EXIF/JPEG", FormatTIFFEP: "TIFF/EP", FormatBMP: "BMP",
	FormatGIF: "GIF", FormatJFIF: "JFIF", FormatPNG: "PNG", FormatTIFF: "TIFF", FormatWMA: "WMA",
	FormatOGG: "OGG", FormatAAC: "AAC", FormatFLAC: "FLAC", FormatWMV: "WMV", FormatMP4: "MP4",
	Format3GP: "3GP", FormatAbstractAVPL: "AbstractAudioVideoPlaylist", FormatM3U: "M3U",
	FormatVCard2: "vCard2", FormatVCard3: "vCard3", FormatICalendar: "iCalendar",
	FormatXMLDocument: "XMLDocument", FormatMSWord: "MSWordDocument", FormatMSExcel: "MSExcelSpreadsheet",
	FormatMSPowerpoint: "MSPowerpointPresentation",
}

// String returns the format's name, or its code in hex.
func (c FormatCode) String() string { return codeName(formatNames, c, "format") }

// Data types of property values.
const (
	TypeUndefined DataType = 0x0000
	TypeInt8      DataType = 0x0001
	TypeUint8     DataType = 0x0002
	TypeInt16     DataType = 0x0003
	TypeUint16    DataType = 0x0004
	TypeInt32     DataType = 0x0005
	TypeUint32    DataType = 0x0006
	TypeInt64     DataType = 0x0007
	TypeUint64    DataType = 0x0008
	TypeInt128    DataType = 0x0009
	TypeUint128   DataType = 0x000A
	TypeArray     DataType = 0x4000 // added to a scalar type: an array of it
	TypeString    DataType = 0xFFFF
)

var typeNames = map[DataType]string{
	TypeUndefined: "UNDEF", TypeInt8: "INT8", TypeUint8: "UINT8", TypeInt16: "INT16",
	TypeUint16: "UINT16", TypeInt32: "INT32", TypeUint32: "UINT32", TypeInt64: "INT64",
	TypeUint64: "UINT64", TypeInt128: "INT128", TypeUint128: "UINT128", TypeString: "STR",
}

// String returns the type's name as PTP writes it (UINT32, AUINT16, STR).
func (t DataType) String() string {
	if t&TypeArray != 0 && t != TypeString {
		if n, ok := typeNames[t&^TypeArray]; ok {
			return "A" + n
		}
	}
	return codeName(typeNames, t, "type")
}

// codeName names a code from its table, or prints it in hex.
func codeName[C ~uint16](names map[C]string, c C, what string) string {
	if n, ok := names[c]; ok {
		return n
	}
	return fmt.Sprintf("unknown %s 0x%04X", what, uint16(c))
}

// FormatForName guesses an object format from a file name's extension, for SendObjectInfo:
// devices index media by it (Android's media scanner does).
func FormatForName(name string) FormatCode {
	ext := ""
	for i := len(name) - 1; i >= 0 && name[i] != '/'; i-- {
		if name[i] == '.' {
			ext = name[i+1:]
			break
		}
	}
	switch lower(ext) {
	case "jpg", "jpeg":
		return FormatEXIFJPEG
	case "png":
		return FormatPNG
	case "gif":
		return FormatGIF
	case "bmp":
		return FormatBMP
	case "tif", "tiff":
		return FormatTIFF
	case "mp3":
		return FormatMP3
	case "wav":
		return FormatWAV
	case "aif", "aiff":
		return FormatAIFF
	case "ogg", "oga", "opus":
		return FormatOGG
	case "aac", "m4a":
		return FormatAAC
	case "flac":
		return FormatFLAC
	case "wma":
		return FormatWMA
	case "wmv":
		return FormatWMV
	case "avi":
		return FormatAVI
	case "mpg", "mpeg":
		return FormatMPEG
	case "asf":
		return FormatASF
	case "mp4", "m4v":
		return FormatMP4
	case "3gp":
		return Format3GP
	case "txt":
		return FormatText
	case "htm", "html":
		return FormatHTML
	case "m3u":
		return FormatM3U
	case "vcf":
		return FormatVCard3
	case "ics":
		return FormatICalendar
	case "xml":
		return FormatXMLDocument
	case "doc", "docx":
		return FormatMSWord
	case "xls", "xlsx":
		return FormatMSExcel
	case "ppt", "pptx":
		return FormatMSPowerpoint
	}
	return FormatUndefined
}

// lower lower-cases ASCII letters only (extensions are compared without locale).
func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
