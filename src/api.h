/* api.h - the handlers of the north API, one per route (routes.c lists them). Each takes a
 * routed, authenticated request and answers it through request.h. */
#ifndef SG_API_H
#define SG_API_H

struct sg_req;

void sg_api_health(struct sg_req *r);
void sg_api_list_sessions(struct sg_req *r);
void sg_api_get_session(struct sg_req *r);
void sg_api_list_events(struct sg_req *r);

#endif
