/*
 * vdisim.h - vdisim's plain C API to the VDI client role (libsqlvdi.so from vdisim).
 *
 * For languages that can call C but not C++ or COM. Same semantics as the VDI calls of
 * SPEC §1.2/§1.3: every function returns NOERROR (0) or a VD_E_* code (negative int, see
 * vdierror.h). Timeouts are milliseconds; VDISIM_INFINITE waits for ever (every wait still
 * notices an abort or a dead server).
 *
 * Handles:
 *   vdisim_set*     from vdisim_set_new() until vdisim_set_free(); reusable after close.
 *   vdisim_device*  from vdisim_set_open_device(); valid until the set's next create /
 *                   open_in_secondary or vdisim_set_free(). vdisim_set_close() invalidates it:
 *                   calls then return VD_E_PROTOCOL.
 *   VDC_Command*    from vdisim_device_get_command(); valid until completed (and still
 *                   readable right after). Its buffer belongs to the client until then.
 *
 *   cc client.c -I<vdisim>/sim/include -L<target>/debug -lsqlvdi
 */
#ifndef VDISIM_H_
#define VDISIM_H_

#include <stdint.h>
#include "vdi.h"
#include "vdierror.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VDISIM_INFINITE 0xFFFFFFFFu

/* Win32 completion codes beyond the ones vdi.h defines (SPEC §2.5). */
#ifndef ERROR_INVALID_HANDLE
#define ERROR_INVALID_HANDLE      6L
#endif
#ifndef ERROR_END_OF_MEDIA
#define ERROR_END_OF_MEDIA        1100L
#endif
#ifndef ERROR_NO_DATA_DETECTED
#define ERROR_NO_DATA_DETECTED    1104L
#endif
#ifndef ERROR_IO_DEVICE
#define ERROR_IO_DEVICE           1117L
#endif
#ifndef ERROR_EOM_OVERFLOW
#define ERROR_EOM_OVERFLOW        1129L
#endif

typedef struct vdisim_set vdisim_set;
typedef struct vdisim_device vdisim_device;

/* A new set object (state DNE). NULL only on an internal failure. */
vdisim_set* vdisim_set_new(void);
/* Closes the set if still open and frees it and its devices. */
void vdisim_set_free(vdisim_set* set);

/* Create: instance from _VIRTUAL_SERVER_NAME_ if set. VD_E_PROTOCOL if the set exists. */
int vdisim_set_create(vdisim_set* set, const char* name, const VDConfig* cfg);
/* CreateEx: instance NULL = the default instance. */
int vdisim_set_create_ex(vdisim_set* set, const char* instance, const char* name, const VDConfig* cfg);
/* Waits for the server's configuration. VD_E_TIMEOUT changes nothing: call again. */
int vdisim_set_get_configuration(vdisim_set* set, uint32_t timeout_ms, VDConfig* out);
/* The first device is named like the set. *out is NULL on failure. VD_E_OPEN: not yet. */
int vdisim_set_open_device(vdisim_set* set, const char* name, vdisim_device** out);
int vdisim_set_signal_abort(vdisim_set* set);
/* VD_E_OPEN if devices never saw VD_E_CLOSE (the set is aborted and freed anyway). */
int vdisim_set_close(vdisim_set* set);
int vdisim_set_open_in_secondary(vdisim_set* set, const char* instance, const char* name);
int vdisim_set_get_buffer_handle(vdisim_set* set, const uint8_t* buffer, uint32_t* handle);
int vdisim_set_map_buffer_handle(vdisim_set* set, uint32_t handle, uint8_t** buffer);

/* NOERROR, VD_E_CLOSE (normal end of this device), VD_E_TIMEOUT (retry), VD_E_ABORT. */
int vdisim_device_get_command(vdisim_device* device, uint32_t timeout_ms, VDC_Command** out);
/* completion_code is a Win32 code (ERROR_SUCCESS, ERROR_HANDLE_EOF, ERROR_NOT_SUPPORTED...);
 * bytes for Read/Write, position for Get/SetPosition. VD_E_INVALID: not an active command. */
int vdisim_device_complete_command(vdisim_device* device, VDC_Command* cmd, uint32_t completion_code,
                                   uint32_t bytes_transferred, uint64_t position);

/* "NOERROR", "VD_E_ABORT", ... or "VD_E_?" (static strings). */
const char* vdisim_error_name(int code);
const char* vdisim_version(void);

#ifdef __cplusplus
}
#endif

#endif /* VDISIM_H_ */
