"""Pages of training and certificates (``/team/training/…``, ``/team/certificates/…``)."""

from django.urls import path

from . import views_training as v

urlpatterns: list = [
    path("training/", v.calendar_view, name="training_calendar"),
    path("training/courses/", v.course_list, name="training_courses"),
    path("training/courses/new/", v.course_form, name="training_course_new"),
    path("training/courses/<int:course_id>/edit/", v.course_form, name="training_course_edit"),
    path("training/sessions/new/", v.session_new, name="training_session_new"),
    path("training/sessions/<int:session_id>/", v.session_detail, name="training_session"),
    path("training/sessions/<int:session_id>/edit/", v.session_edit, name="training_session_edit"),
    path("training/sessions/<int:session_id>/enrol/", v.session_enrol, name="training_session_enrol"),
    path("training/sessions/<int:session_id>/attendance/", v.session_attendance, name="training_attendance"),
    path("training/sessions/<int:session_id>/cancel/", v.session_cancel, name="training_session_cancel"),
    path("training/enrolments/<int:enrolment_id>/cancel/", v.enrolment_cancel, name="training_enrolment_cancel"),
    path("training/overdue/", v.overdue, name="training_overdue"),
    path("training/people/", v.people, name="training_people"),
    path("training/people/<int:employee_id>/", v.record, name="training_record"),
    path("training/me/", v.record_me, name="training_me"),
    path("training/safety/", v.safety, name="training_safety"),
    path("certificates/", v.certificates, name="certificates"),
    path("certificates/<int:cert_id>/renew/", v.certificate_renew, name="certificate_renew"),
]
